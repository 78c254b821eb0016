package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/postgres"
	"github.com/opendts/opendts/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// recorder is an engine.Reporter that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	started  []string
	progress [][2]int
	verified []engine.TableVerification
	tables   map[engine.TableRef]engine.TableProgress
}

func (r *recorder) Plan([]engine.StepDef) {}
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
	if r.tables == nil {
		r.tables = map[engine.TableRef]engine.TableProgress{}
	}
	if old, ok := r.tables[p.Table]; !ok || p.RowsDone >= old.RowsDone {
		r.tables[p.Table] = p
	}
	r.mu.Unlock()
}

func endpoint(s *testpg.Server) engine.Endpoint {
	return engine.Endpoint{DatabaseType: "postgresql", Host: s.Host, Port: s.Port, User: "postgres"}
}

func newEngine() *postgres.Engine {
	return postgres.New(postgres.Config{Workers: 3, ChunkRows: 1000})
}

// seedBasic fills db with a bit of everything the copy handles
// differently: integer keys split by ranges, a keyless table split by
// ctid with duplicate rows, a text key, partitions, a user-defined type
// (copied as text), a sequence, a view and a materialized view.
func seedBasic(t *testing.T, s *testpg.Server, db string) {
	s.Exec(t, db,
		`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
		`CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(12,2), tags text[], m mood, moods mood[], doubled int GENERATED ALWAYS AS (length(name) * 2) STORED)`,
		`INSERT INTO items (name, price, tags, m, moods) SELECT 'item ' || g, g * 1.5, ARRAY['a', NULL, 'c' || g], (ARRAY['sad','ok','happy'])[g % 3 + 1]::mood, ARRAY['ok', 'sad']::mood[] FROM generate_series(1, 5000) g`,
		`CREATE TABLE log (at timestamptz, msg text, payload bytea)`,
		`INSERT INTO log SELECT '2024-01-01'::timestamptz + g * interval '1 minute', 'same', '\x00ff'::bytea FROM generate_series(1, 3000) g`,
		`INSERT INTO log SELECT at, msg, payload FROM log LIMIT 10`,
		`CREATE TABLE codes (code text PRIMARY KEY, n int)`,
		`INSERT INTO codes SELECT 'c' || g, g FROM generate_series(1, 2500) g`,
		`CREATE TABLE events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
		`CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')`,
		`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`INSERT INTO events SELECT g, '2023-06-01'::date + (g % 400) FROM generate_series(1, 1500) g`,
		`CREATE TABLE orders (id int PRIMARY KEY, item bigint REFERENCES items(id), qty int CHECK (qty > 0))`,
		`INSERT INTO orders SELECT g, g, g FROM generate_series(1, 100) g`,
		`CREATE INDEX items_name ON items (lower(name))`,
		`CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 100`,
		`CREATE MATERIALIZED VIEW totals AS SELECT m, count(*) AS n FROM items GROUP BY m`,
		`ANALYZE`,
	)
}

// sameRows fails the test unless db holds the same on both servers:
// structure as pg_dump prints it, every row, sequences and materialized
// views (internal/testpg's comparison; the database's own properties are
// left out, since a test's target database may be made differently).
func sameRows(t *testing.T, src, dst *testpg.Server, db string) {
	t.Helper()
	testpg.CompareDatabaseWith(t, src, dst, db, db, testpg.CompareOptions{NoDatabase: true})
}

func TestMigrateFullDatabase(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "full")
	t.Cleanup(func() { dst.DropDatabase(db) })
	seedBasic(t, src, db)
	spec := engine.Spec{
		JobID: "pg-full-" + db, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull,
	}
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := driver.Migrate(ctx, newEngine(), spec, rec, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	sameRows(t, src, dst, db)
	for _, v := range rec.verified {
		if v.Differences != 0 {
			t.Errorf("verify %s.%s: %d differences: %s", v.Database, v.Table, v.Differences, v.Detail)
		}
	}
	if len(rec.verified) != 6 {
		t.Errorf("verified %d tables, want 6 (codes, 2 partitions, items, log, orders): %+v", len(rec.verified), rec.verified)
	}
	// Per-table progress ends with every table done and its rows counted.
	for _, tb := range []struct {
		name string
		rows int64
	}{{"items", 5000}, {"log", 3010}, {"codes", 2500}, {"orders", 100}} {
		p := rec.tables[engine.TableRef{Database: db, Schema: "public", Table: tb.name}]
		if !p.Done || p.RowsDone != tb.rows {
			t.Errorf("progress of %s: %+v, want %d rows done", tb.name, p, tb.rows)
		}
	}
	var next int64
	if err := dst.Conn(t, db).QueryRow(context.Background(), "SELECT nextval('items_id_seq')").Scan(&next); err != nil || next != 5001 {
		t.Errorf("target sequence nextval = %d, %v; want 5001", next, err)
	}
	var marks bool
	if err := dst.Conn(t, db).QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '_opendts')").Scan(&marks); err != nil || marks {
		t.Errorf("the chunk marks' schema is left on the target (%v)", err)
	}
}

// A run cancelled in the middle of its copy (a stop, or the process going
// away) resumes from its committed chunks, from a new snapshot, and ends
// with the same rows: none lost, none doubled.
func TestMigrateResumesFromChunks(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "resume")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db,
		`CREATE TABLE big (id int PRIMARY KEY, v text)`,
		`INSERT INTO big SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 60000) g`,
		`CREATE TABLE heap (v text)`,
		`INSERT INTO heap SELECT repeat(md5((g % 100)::text), 20) FROM generate_series(1, 40000) g`,
		`ANALYZE`)
	spec := engine.Spec{
		JobID: "pg-resume-" + db, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyNever,
	}
	eng := postgres.New(postgres.Config{Workers: 2, ChunkRows: 2000})
	ctx, cancel := context.WithCancel(context.Background())
	rec := &progressCanceller{at: 30, cancel: cancel}
	err := driver.Migrate(ctx, eng, spec, rec, nil)
	if err == nil {
		t.Fatal("the first run finished before it was cancelled")
	}
	var marks int
	if err := dst.Conn(t, db).QueryRow(context.Background(), "SELECT count(*) FROM _opendts.migrate_chunks").Scan(&marks); err != nil || marks == 0 {
		t.Fatalf("no chunk committed before the cancel (%d, %v)", marks, err)
	}
	// Rows change between the runs: the second snapshot sees them.
	src.Exec(t, db, `UPDATE heap SET v = 'moved' WHERE ctid < '(3,0)'`, `DELETE FROM big WHERE id > 59990`)
	spec.Resume = true
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel2()
	if err := driver.Migrate(ctx2, eng, spec, &recorder{}, nil); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	var n int
	if err := dst.Conn(t, db).QueryRow(context.Background(), "SELECT count(*) FROM heap").Scan(&n); err != nil || n != 40000 {
		t.Fatalf("heap has %d rows on the target, want 40000 (%v)", n, err)
	}
	// big's committed chunks are from the first snapshot: the rows deleted
	// between the runs may be there, but no key twice and none missing
	// below them.
	var keys, distinct int
	if err := dst.Conn(t, db).QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id) FROM big WHERE id <= 59990").Scan(&keys, &distinct); err != nil || keys != 59990 || distinct != keys {
		t.Fatalf("big has %d rows (%d distinct) up to 59990 on the target, want 59990 (%v)", keys, distinct, err)
	}
	dst.Exec(t, db, "DELETE FROM big WHERE id > 59990")
	sameRows(t, src, dst, db)
}

// progressCanceller cancels the run once the copy has passed a share.
type progressCanceller struct {
	recorder
	at     int
	cancel context.CancelFunc
}

func (p *progressCanceller) Progress(o, c int) {
	p.recorder.Progress(o, c)
	if o > 5 && c >= p.at {
		p.cancel()
	}
}
