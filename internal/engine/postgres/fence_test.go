package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/postgres"
	"github.com/opendts/opendts/internal/testpg"
)

type copyReportNop struct{}

func (copyReportNop) Snapshotted()                 {}
func (copyReportNop) Copied(int)                   {}
func (copyReportNop) Table(p engine.TableProgress) {}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scalar(t *testing.T, c *pgx.Conn, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), q, args...).Scan(&n); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return n
}

// A run whose chunk transaction is open when a newer epoch takes the job
// over (a paused node coming back) has that commit refused and rolled
// back, cannot open again under its old epoch, and the newer run
// completes the job exactly.
func TestFencePostgresCopy(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "fence")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db,
		`CREATE TABLE big (id int PRIMARY KEY, v text)`,
		`INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 20000) g`,
		`ANALYZE`)
	spec := engine.Spec{
		JobID: "pg-fence-" + db, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyNever,
		Epoch: 5,
	}
	eng := postgres.New(postgres.Config{Workers: 1, ChunkRows: 2000})
	ctx := context.Background()
	m5, err := eng.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m5.Close()
	for _, step := range []func() error{
		func() error { return m5.Forget(ctx) },
		func() error { _, err := m5.LoadPhase(ctx); return err },
		func() error { return m5.Prepare(ctx) },
		func() error { return m5.Structure(ctx, func(int, int) {}) },
		func() error { return m5.SavePhase(ctx, engine.PhaseCopy) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	// A lock the test holds on the chunk marks keeps the old run's first
	// chunk transaction open, its rows written, while epoch 6 takes the
	// job over (a node paused before its commit).
	tc := dst.Conn(t, db)
	if _, err := tc.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS _opendts;
		CREATE TABLE IF NOT EXISTS _opendts.migrate_chunks (
		job_id text NOT NULL, chunk_id int NOT NULL, row_count bigint NOT NULL,
		PRIMARY KEY (job_id, chunk_id))`); err != nil {
		t.Fatal(err)
	}
	hold, err := tc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `LOCK TABLE _opendts.migrate_chunks IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	copied := make(chan error, 1)
	go func() { copied <- m5.Copy(ctx, copyReportNop{}) }()
	watch := dst.Conn(t, "postgres")
	waitUntil(t, "the old run's chunk to wait on its mark", func() bool {
		select {
		case err := <-copied:
			t.Fatalf("the copy ended before the takeover: %v", err)
		default:
		}
		return scalar(t, watch, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO _opendts.migrate_chunks%'`) > 0
	})
	spec6 := spec
	spec6.Epoch, spec6.Resume = 6, true
	newer := make(chan error, 1)
	go func() { newer <- driver.Migrate(ctx, eng, spec6, &recorder{}, nil) }()
	// The new owner records its epoch in the database before it reads
	// the marks there; then the held row goes.
	fc := dst.Conn(t, db)
	waitUntil(t, "epoch 6 in the migrated database", func() bool {
		return scalar(t, fc, `SELECT epoch FROM _opendts.migrate_fence WHERE job_id = $1`, spec.JobID) == 6
	})
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-copied:
	case <-time.After(60 * time.Second):
		t.Fatal("the fenced copy did not end")
	}
	if !errors.Is(err, engine.ErrFenced) || !strings.Contains(err.Error(), "commit refused: job "+spec.JobID+" is now owned by epoch 6 (this run has epoch 5") {
		t.Fatalf("the old run's copy: %v", err)
	}
	t.Logf("refused: %v", err)
	if err := m5.SavePhase(ctx, engine.PhaseObjects); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("the old run saved its phase: %v", err)
	}
	m5.Close()
	if _, err := eng.Open(ctx, spec); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("opening again with epoch 5: %v", err)
	}
	select {
	case err = <-newer:
	case <-time.After(2 * time.Minute):
		t.Fatal("the epoch 6 run did not end")
	}
	if err != nil {
		t.Fatalf("the epoch 6 run: %v", err)
	}
	sameRows(t, src, dst, db)
}

// A full + incremental run whose job a newer epoch took over has its next
// group of changes refused and ends with ErrFenced, without a retry; the
// newer run, which waited for the slot, completes exactly.
func TestFencePostgresStream(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "fencecdc")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db,
		`CREATE TABLE items (id serial PRIMARY KEY, name text, n int)`,
		`INSERT INTO items (name, n) SELECT 'item ' || g, g FROM generate_series(1, 3000) g`,
		`ANALYZE`)
	spec := engine.Spec{
		JobID: "pg-fencecdc-" + db, MigrateType: engine.MigrateFullAndIncremental, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyNever,
		Epoch: 5,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rec := &caughtUp{ready: make(chan struct{})}
	old := make(chan error, 1)
	go func() { old <- driver.Migrate(ctx, newEngine(), spec, rec, make(chan string)) }()
	select {
	case <-rec.ready:
	case err := <-old:
		t.Fatalf("migrate ended before it caught up: %v", err)
	}

	spec6 := spec
	spec6.Epoch, spec6.Resume = 6, true
	rec6 := &caughtUp{ready: make(chan struct{})}
	complete := make(chan string, 1)
	newer := make(chan error, 1)
	go func() { newer <- driver.Migrate(ctx, newEngine(), spec6, rec6, complete) }()
	fc := dst.Conn(t, db)
	waitUntil(t, "epoch 6 in the migrated database", func() bool {
		return scalar(t, fc, `SELECT epoch FROM _opendts.migrate_fence WHERE job_id = $1`, spec.JobID) == 6
	})
	src.Exec(t, db, `INSERT INTO items (name, n) SELECT 'new ' || g, g FROM generate_series(1, 100) g`)
	var err error
	select {
	case err = <-old:
	case <-time.After(60 * time.Second):
		t.Fatal("the fenced stream did not end")
	}
	if !errors.Is(err, engine.ErrFenced) || !strings.Contains(err.Error(), "is now owned by epoch 6 (this run has epoch 5") {
		t.Fatalf("the old run: %v", err)
	}
	t.Logf("refused: %v", err)
	if _, err := newEngine().Open(ctx, spec); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("opening again with epoch 5: %v", err)
	}
	select {
	case <-rec6.ready:
	case err := <-newer:
		t.Fatalf("the epoch 6 run ended before it caught up: %v", err)
	}
	src.Exec(t, db, `UPDATE items SET n = n + 1 WHERE id % 5 = 0`)
	complete <- engine.CompleteWaitForSync
	if err := <-newer; err != nil {
		t.Fatalf("the epoch 6 run: %v", err)
	}
	sameRows(t, src, dst, db)
}

// Without an epoch a run records no fence.
func TestFencePostgresEpochZero(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "fencezero")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t SELECT generate_series(1, 100)`)
	spec := engine.Spec{
		JobID: "pg-fencezero-" + db, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyNever,
	}
	if err := driver.Migrate(context.Background(), newEngine(), spec, &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	sameRows(t, src, dst, db)
	var n int64
	err := dst.Conn(t, "postgres").QueryRow(context.Background(), `SELECT count(*) FROM _opendts.migrate_fence WHERE job_id = $1`, spec.JobID).Scan(&n)
	if err == nil && n != 0 {
		t.Fatalf("an epoch 0 run recorded a fence: %d rows", n)
	}
	if err != nil && !strings.Contains(err.Error(), "42P01") {
		t.Fatal(err)
	}
}
