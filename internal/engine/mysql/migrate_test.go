package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// recorder is an engine.Reporter that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	steps    []engine.StepDef
	started  []string
	progress [][2]int
	verified []engine.TableVerification
	tables   []engine.TableProgress
}

func (r *recorder) Plan(s []engine.StepDef) { r.mu.Lock(); r.steps = s; r.mu.Unlock() }
func (r *recorder) StepStarted(id string) {
	r.mu.Lock()
	r.started = append(r.started, id)
	r.mu.Unlock()
}
func (r *recorder) Progress(o, c int) {
	r.mu.Lock()
	r.progress = append(r.progress, [2]int{o, c})
	r.mu.Unlock()
}
func (r *recorder) Lag(int64, int64) {}
func (r *recorder) Verified(v []engine.TableVerification) {
	r.mu.Lock()
	r.verified = v
	r.mu.Unlock()
}
func (r *recorder) CaughtUp() {}
func (r *recorder) TableProgress(p engine.TableProgress) {
	r.mu.Lock()
	r.tables = append(r.tables, p)
	r.mu.Unlock()
}

func fullSpec(jobID string, src, dst *testdb.Server, db string) engine.Spec {
	return engine.Spec{
		JobID: jobID, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects:         []engine.ObjectSelection{{Database: db}},
		Source:          engine.Endpoint{DatabaseType: "mariadb", Host: src.Host, Port: src.Port, User: "root"},
		Target:          engine.Endpoint{DatabaseType: "mariadb", Host: dst.Host, Port: dst.Port, User: "root"},
		ConsistencyType: 5,
	}
}

func checksums(t *testing.T, s *testdb.Server, db string, tables ...string) string {
	t.Helper()
	out := ""
	for _, tb := range tables {
		var name string
		var sum *int64
		if err := s.DB(t).QueryRow(fmt.Sprintf("CHECKSUM TABLE `%s`.`%s` EXTENDED", db, tb)).Scan(&name, &sum); err != nil {
			t.Fatal(err)
		}
		if sum == nil {
			out += tb + "=missing "
		} else {
			out += fmt.Sprintf("%s=%d ", tb, *sum)
		}
	}
	return out
}

// A job cancelled in the middle of its copy (a stop, or the process going
// away) resumes from its committed chunks and ends with the same data.
func TestMigrateResumesFromChunks(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "resume")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t,
		"CREATE TABLE `"+db+"`.big (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(40), b BLOB, f FLOAT, ts TIMESTAMP(3) NULL)",
		"INSERT INTO `"+db+"`.big SELECT seq, CONCAT('row ', seq, ' ✓'), UNHEX(SHA2(seq, 256)), seq / 7, FROM_UNIXTIME(seq) FROM `"+db+"`.seq_1_to_60000",
		"CREATE TABLE `"+db+"`.nokey (a INT, b TEXT)",
		"INSERT INTO `"+db+"`.nokey VALUES (1, 'x'), (1, 'x'), (2, NULL)",
		"ANALYZE TABLE `"+db+"`.big",
	)
	spec := fullSpec("dts-resume01", src, dst, db)
	e := mysql.New(mysql.Config{ChunkRows: 5000, Workers: 2})

	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, spec, rec, nil) }()
	// Cancel once some chunks are in.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = 'dts-resume01'").Scan(&n)
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	err := <-done
	if err == nil {
		t.Fatal("the copy finished before it was cancelled; resume is not exercised")
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled migration: %v", err)
	}
	var before int
	_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM `" + db + "`.big").Scan(&before)
	if before == 0 || before >= 60000 {
		t.Fatalf("%d rows copied before the cancel: resume is not exercised", before)
	}

	rec = &recorder{}
	spec.Resume = true
	if err := driver.Migrate(context.Background(), e, spec, rec, nil); err != nil {
		t.Fatalf("resumed migration: %v", err)
	}
	t.Logf("rows before the resume: %d of 60000", before)
	if got, want := checksums(t, dst, db, "big", "nokey"), checksums(t, src, db, "big", "nokey"); got != want {
		t.Errorf("target %s, source %s", got, want)
	}
	last := rec.progress[len(rec.progress)-1]
	if last != [2]int{100, 100} {
		t.Errorf("last progress %v", last)
	}
	checkTableProgress(t, rec.tables, "big", int64(before), 60000)
	// nokey is one chunk, done before the cancel or not.
	checkTableProgress(t, rec.tables, "nokey", -1, 3)
	// What is left of the job is its "done" mark: no chunks.
	var left int
	_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = 'dts-resume01'").Scan(&left)
	if left != 0 {
		t.Error("the job's chunk checkpoints are left behind after success")
	}
	// Resumed once more (a restart before the job service recorded the
	// success), it does nothing and succeeds: no row is copied twice.
	if err := driver.Migrate(context.Background(), e, spec, &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := checksums(t, dst, db, "big", "nokey"), checksums(t, src, db, "big", "nokey"); got != want {
		t.Errorf("after a late resume: target %s, source %s", got, want)
	}
}

// checkTableProgress checks a run's reports of a table: the first is the
// baseline of the rows committed before the run (when baseline is not
// -1), the rows never go past those on the source, and the table ends done
// with all of them.
func checkTableProgress(t *testing.T, reports []engine.TableProgress, table string, baseline, rows int64) {
	t.Helper()
	var mine []engine.TableProgress
	for _, p := range reports {
		if p.Table.Table == table {
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 || !mine[0].Done && len(mine) < 2 {
		t.Fatalf("%s: progress reports %+v, want a baseline and one per chunk", table, mine)
	}
	if first := mine[0]; baseline >= 0 && (first.RowsDone != baseline || first.Done || first.RowsTotal <= 0) {
		t.Errorf("%s: first report %+v, want the baseline of %d rows", table, first, baseline)
	}
	var most int64
	done := false
	for _, p := range mine {
		most = max(most, p.RowsDone)
		done = done || p.Done
		if p.RowsDone > rows {
			t.Errorf("%s: %d rows reported of %d", table, p.RowsDone, rows)
		}
	}
	if most != rows || !done {
		t.Errorf("%s: ends at %d rows, done %v; want %d, done", table, most, done, rows)
	}
}

func position(t *testing.T, s *testdb.Server) string {
	t.Helper()
	var file, pos, a, b string
	if err := s.DB(t).QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &a, &b); err != nil {
		t.Fatal(err)
	}
	return file + ":" + pos
}

// ExternParams {"TargetBinlog":"off"} keeps the copy out of the target's
// binlog; anything else in ExternParams is refused before work starts.
func TestTargetBinlogOff(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "nobinlog")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, v TEXT)",
		"INSERT INTO `"+db+"`.t SELECT seq, REPEAT('x', seq) FROM `"+db+"`.seq_1_to_500")
	spec := fullSpec("dts-nobinlog", src, dst, db)
	spec.ExternParams = `{"TargetBinlog":"sometimes"}`
	if err := driver.Migrate(context.Background(), mysql.New(mysql.Config{}), spec, &recorder{}, nil); err == nil || !strings.Contains(err.Error(), "TargetBinlog") {
		t.Fatalf("bad ExternParams: %v", err)
	}
	before := position(t, dst)
	spec.ExternParams = `{"TargetBinlog":"off"}`
	if err := driver.Migrate(context.Background(), mysql.New(mysql.Config{}), spec, &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	if after := position(t, dst); after != before {
		t.Errorf("the target's binlog moved from %s to %s", before, after)
	}
	if got, want := checksums(t, dst, db, "t"), checksums(t, src, db, "t"); got != want {
		t.Errorf("target %s, source %s", got, want)
	}
}

// A target with local_infile=OFF refuses LOAD DATA LOCAL; the copy falls
// back to INSERTs and still arrives whole.
func TestLoadDataDeniedFallsBack(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "noinfile")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, v VARBINARY(300))",
		"INSERT INTO `"+db+"`.t SELECT seq, UNHEX(REPEAT(HEX(seq % 256), seq % 200)) FROM `"+db+"`.seq_1_to_3000")
	dst.Exec(t, "SET GLOBAL local_infile = 0")
	t.Cleanup(func() { dst.Exec(t, "SET GLOBAL local_infile = 1") })
	if err := driver.Migrate(context.Background(), mysql.New(mysql.Config{ChunkRows: 1000}), fullSpec("dts-noinfile", src, dst, db), &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := checksums(t, dst, db, "t"), checksums(t, src, db, "t"); got != want {
		t.Errorf("target %s, source %s", got, want)
	}
}
