package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// fenceDatabase is a source database with one table of n rows.
func fenceDatabase(t *testing.T, prefix string, n int) (src, dst *testdb.Server, db string) {
	src, dst, db = cdcDatabase(t, prefix)
	src.Exec(t,
		"CREATE TABLE `"+db+"`.k (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(40), u BIGINT UNSIGNED, f DOUBLE)",
		fmt.Sprintf("INSERT INTO `"+db+"`.k SELECT seq, CONCAT('row ', seq), seq, seq / 7 FROM `"+db+"`.seq_1_to_%d", n),
		"CREATE TABLE `"+db+"`.nokey (a INT, b TEXT)",
		"ANALYZE TABLE `"+db+"`.k",
	)
	return src, dst, db
}

func targetCount(t *testing.T, dst *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := dst.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A run whose chunk transaction is open when a newer epoch claims the job
// (a paused node coming back after a takeover) has that commit refused,
// rolls back its rows, cannot open again under its old epoch, and leaves
// the newer run to complete the job exactly.
func TestFenceMySQLCopy(t *testing.T) {
	for _, loadData := range []bool{true, false} {
		t.Run(fmt.Sprintf("loaddata=%v", loadData), func(t *testing.T) {
			src, dst, db := fenceDatabase(t, "fence", 30000)
			jobID := fmt.Sprintf("dts-fence%v", loadData)
			spec := fullSpec(jobID, src, dst, db)
			spec.Epoch = 5
			fc := &fencedCount{}
			e := mysql.New(mysql.Config{ChunkRows: 5000, Workers: 1, DisableLoadData: !loadData, Counters: fc})
			tdb := dst.DB(t)
			ctx := context.Background()

			m5, err := e.Open(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer m5.Close()
			if err := m5.Forget(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := m5.LoadPhase(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m5.Prepare(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m5.Structure(ctx, func(int, int) {}); err != nil {
				t.Fatal(err)
			}
			if err := m5.SavePhase(ctx, engine.PhaseCopy); err != nil {
				t.Fatal(err)
			}

			// A row the test writes and holds keeps the old run's first
			// chunk transaction open, its rows written, until the job is
			// claimed by epoch 6 (a paused node, and a takeover meanwhile).
			hold, err := tdb.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Rollback()
			if _, err := hold.Exec("INSERT INTO `" + db + "`.k (id) VALUES (2)"); err != nil {
				t.Fatal(err)
			}
			copied := make(chan error, 1)
			go func() { copied <- m5.Copy(ctx, copyReportNop{}) }()
			waitFor(t, "the old run's chunk to wait on the held row", func() bool {
				select {
				case err := <-copied:
					t.Fatalf("the copy ended before the claim: %v", err)
				default:
				}
				return targetCount(t, tdb, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO `"+db+"`.`k`%' OR INFO LIKE 'LOAD DATA%'") > 0
			})
			m6, err := e.Open(ctx, withEpoch(spec, 6))
			if err != nil {
				t.Fatal(err)
			}
			m6.Close()
			if err := hold.Rollback(); err != nil {
				t.Fatal(err)
			}
			select {
			case err = <-copied:
			case <-time.After(30 * time.Second):
				t.Fatal("the fenced copy did not end")
			}
			if !errors.Is(err, engine.ErrFenced) || !strings.Contains(err.Error(), "commit refused: job "+jobID+" is now owned by epoch 6 (this run has epoch 5") {
				t.Fatalf("the old run's copy: %v", err)
			}
			t.Logf("refused: %v", err)
			if fc.n.Load() == 0 {
				t.Error("the refused commit was not counted")
			}
			if n := targetCount(t, tdb, "SELECT COUNT(*) FROM `"+db+"`.k"); n != 0 {
				t.Fatalf("%d rows of the refused chunk landed", n)
			}
			if n := targetCount(t, tdb, "SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = ?", jobID); n != 0 {
				t.Fatalf("%d chunk marks of the refused run landed", n)
			}
			if err := m5.SavePhase(ctx, engine.PhaseObjects); !errors.Is(err, engine.ErrFenced) {
				t.Fatalf("the old run saved its phase: %v", err)
			}
			if err := m5.Finish(ctx); !errors.Is(err, engine.ErrFenced) {
				t.Fatalf("the old run finished: %v", err)
			}
			m5.Close()
			if _, err := e.Open(ctx, spec); !errors.Is(err, engine.ErrFenced) {
				t.Fatalf("opening again with epoch 5: %v", err)
			}

			spec.Epoch, spec.Resume = 6, true
			if err := driver.Migrate(ctx, e, spec, &recorder{}, nil); err != nil {
				t.Fatalf("the epoch 6 run: %v", err)
			}
			testdb.CompareDatabase(t, src, dst, db)
			if n := targetCount(t, tdb, "SELECT epoch FROM __opendts.migrate_fence WHERE job_id = ?", jobID); n != 6 {
				t.Fatalf("fence epoch %d after the epoch 6 run", n)
			}
		})
	}
}

func withEpoch(spec engine.Spec, epoch int64) engine.Spec {
	spec.Epoch = epoch
	return spec
}

// fencedCount counts refused writes (mysql.FencedCounter).
type fencedCount struct{ n atomic.Int64 }

func (*fencedCount) CopiedRows(string, int64, int64) {}
func (*fencedCount) AppliedRows(string, int64)       {}
func (c *fencedCount) FencedWrite(string)            { c.n.Add(1) }

type copyReportNop struct{}

func (copyReportNop) Snapshotted()                 {}
func (copyReportNop) Copied(int)                   {}
func (copyReportNop) Table(p engine.TableProgress) {}

// A full + incremental run whose job is claimed by a newer epoch while it
// applies changes stops at its next group with ErrFenced, without
// applying it and without retrying; the newer run resumes from the saved
// position and completes exactly.
func TestFenceMySQLStream(t *testing.T) {
	src, dst, db := fenceDatabase(t, "fencecdc", 20000)
	jobID := "dts-fencecdc"
	spec := fullSpec(jobID, src, dst, db)
	spec.MigrateType = engine.MigrateFullAndIncremental
	spec.Epoch = 5
	e := mysql.New(mysql.Config{ChunkRows: 5000, Workers: 2})
	tdb := dst.DB(t)
	old := startCDC(t, e, spec)
	old.caughtUp(t)

	spec6 := spec
	spec6.Epoch, spec6.Resume = 6, true
	claimed, err := e.Open(context.Background(), spec6)
	if err != nil {
		t.Fatal(err)
	}
	claimed.Close()
	src.Exec(t, "INSERT INTO `"+db+"`.k VALUES (900001, 'after the takeover', 1, 0.5)")
	select {
	case err = <-old.result:
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced stream did not end")
	}
	if !errors.Is(err, engine.ErrFenced) || !strings.Contains(err.Error(), "is now owned by epoch 6 (this run has epoch 5") {
		t.Fatalf("the old run: %v", err)
	}
	t.Logf("refused: %v", err)
	if n := targetCount(t, tdb, "SELECT COUNT(*) FROM `"+db+"`.k WHERE id = 900001"); n != 0 {
		t.Fatal("the old run applied a change after the takeover")
	}
	if _, err := e.Open(context.Background(), spec); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("opening again with epoch 5: %v", err)
	}

	stop, done := make(chan struct{}), make(chan int, 1)
	go writer(t, src.DB(t), db, 1000000, stop, done)
	r := startCDC(t, e, spec6)
	r.caughtUp(t)
	close(stop)
	<-done
	r.finish(t)
	testdb.CompareDatabase(t, src, dst, db)
}

// Without an epoch (a single node) a run records no fence.
func TestFenceMySQLEpochZero(t *testing.T) {
	src, dst, db := fenceDatabase(t, "fencezero", 100)
	spec := fullSpec("dts-fencezero", src, dst, db)
	e := mysql.New(mysql.Config{Workers: 1})
	if err := driver.Migrate(context.Background(), e, spec, &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	testdb.CompareDatabase(t, src, dst, db)
	var n int
	err := dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_fence WHERE job_id = 'dts-fencezero'").Scan(&n)
	if err == nil && n != 0 {
		t.Fatalf("an epoch 0 run recorded a fence: %d rows", n)
	}
	if err != nil && !strings.Contains(err.Error(), "1146") {
		t.Fatal(err)
	}
}

// A claim waits for a commit in flight that has read the fence under the
// older epoch (its shared lock): that commit lands whole before the new
// epoch is recorded, and the new owner finds it.
func TestFenceMySQLClaimWaitsForCommitInFlight(t *testing.T) {
	src, dst, db := fenceDatabase(t, "fenceorder", 10)
	jobID := "dts-fenceorder"
	spec := fullSpec(jobID, src, dst, db)
	spec.Epoch = 5
	e := mysql.New(mysql.Config{Workers: 1})
	ctx := context.Background()
	m5, err := e.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	m5.Close()
	tdb := dst.DB(t)
	// The old run's chunk transaction, between its fence check and its
	// COMMIT.
	tx, err := tdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var seen int64
	if err := tx.QueryRow("SELECT epoch FROM __opendts.migrate_fence WHERE job_id = ? LOCK IN SHARE MODE", jobID).Scan(&seen); err != nil || seen != 5 {
		t.Fatalf("fence: %d, %v", seen, err)
	}
	if _, err := tx.Exec("INSERT INTO __opendts.migrate_chunks VALUES (?, 1, 10, 100)", jobID); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan error, 1)
	go func() {
		m6, err := e.Open(ctx, withEpoch(spec, 6))
		if err == nil {
			m6.Close()
		}
		claimed <- err
	}()
	select {
	case err := <-claimed:
		t.Fatalf("the claim did not wait for the commit in flight: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-claimed; err != nil {
		t.Fatal(err)
	}
	if n := targetCount(t, tdb, "SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = ?", jobID); n != 1 {
		t.Fatalf("%d chunk marks after the claim, want the one committed before it", n)
	}
	if n := targetCount(t, tdb, "SELECT epoch FROM __opendts.migrate_fence WHERE job_id = ?", jobID); n != 6 {
		t.Fatalf("fence epoch %d", n)
	}
	tdb.Exec("DELETE FROM __opendts.migrate_chunks WHERE job_id = ?", jobID)
}
