package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/testpg"
)

// caughtUp is a recorder that says when the job reached status 8.
type caughtUp struct {
	recorder
	ready chan struct{}
}

func (c *caughtUp) CaughtUp() {
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}

// A full + incremental job copies, then applies every change the source
// makes (inserts, updates of keys and of rows with unchanged TOASTed
// values, deletes, TRUNCATE, a keyless table under REPLICA IDENTITY FULL,
// a large transaction) until Complete, and leaves the target equal, with
// the sequences set and the slot gone.
func TestIncrementalAppliesEveryChange(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "cdc")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db,
		`CREATE TABLE items (id serial PRIMARY KEY, name text, n int)`,
		`INSERT INTO items (name, n) SELECT 'item ' || g, g FROM generate_series(1, 3000) g`,
		`CREATE TABLE docs (code text PRIMARY KEY, body text, rev int)`,
		`INSERT INTO docs SELECT 'd' || g, (SELECT string_agg(md5(random()::text || x), '') FROM generate_series(1, 2000 + g * 0) x), 1 FROM generate_series(1, 5) g`,
		`CREATE TABLE bag (a int, b text)`,
		`ALTER TABLE bag REPLICA IDENTITY FULL`,
		`INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, NULL)`,
		`CREATE TABLE scratch (id int PRIMARY KEY)`,
		`INSERT INTO scratch SELECT generate_series(1, 10)`,
		`ANALYZE`)
	spec := engine.Spec{
		JobID: "pg-cdc-" + db, MigrateType: engine.MigrateFullAndIncremental, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull,
	}
	rec := &caughtUp{ready: make(chan struct{})}
	complete := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, newEngine(), spec, rec, complete) }()
	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("migrate ended before it caught up: %v", err)
	case <-ctx.Done():
		t.Fatal("never caught up")
	}
	src.Exec(t, db,
		`INSERT INTO items (name, n) SELECT 'new ' || g, g FROM generate_series(1, 500) g`,
		`UPDATE items SET n = n * 2 WHERE id % 7 = 0`,
		`UPDATE items SET id = id + 100000 WHERE id BETWEEN 10 AND 20`,
		`DELETE FROM items WHERE id % 11 = 0`,
		`UPDATE docs SET rev = rev + 1`,
		`UPDATE docs SET body = 'short' WHERE code = 'd3'`,
		`DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = 1 LIMIT 1)`,
		`UPDATE bag SET b = 'y' WHERE a = 2`,
		`TRUNCATE scratch`,
		`INSERT INTO scratch VALUES (42)`,
		`BEGIN; INSERT INTO items (name, n) SELECT 'bulk', g FROM generate_series(1, 30000) g; UPDATE items SET name = 'bulk2' WHERE name = 'bulk' AND n % 2 = 0; COMMIT`,
	)
	complete <- engine.CompleteWaitForSync
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Complete did not end the job")
	}
	sameRows(t, src, dst, db)
	var next int64
	if err := dst.Conn(t, db).QueryRow(context.Background(), "SELECT nextval('items_id_seq')").Scan(&next); err != nil || next != 3000+500+30000+1 {
		t.Errorf("target items_id_seq nextval = %d (%v), want %d", next, err, 3000+500+30000+1)
	}
	var slots int
	if err := src.Conn(t, db).QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'opendts_%'").Scan(&slots); err != nil || slots != 0 {
		t.Errorf("%d replication slots left on the source (%v)", slots, err)
	}
}

// With a superuser source, the source's DDL is captured and replayed in
// its place among the row changes: columns added, renamed and dropped, a
// table created (and filled) and one dropped, an index, and DDL sent in
// one query string with DML between.
func TestIncrementalReplaysDDL(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "ddl")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db,
		`CREATE TABLE items (id int PRIMARY KEY, name text)`,
		`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g`,
		`CREATE TABLE scratch (id int PRIMARY KEY)`,
		`CREATE SCHEMA other`,
		`CREATE TABLE other.keep (id int PRIMARY KEY)`)
	spec := engine.Spec{
		JobID: "pg-ddl-" + db, MigrateType: engine.MigrateFullAndIncremental, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db, Schema: "public"}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyNever,
	}
	rec := &caughtUp{ready: make(chan struct{})}
	complete := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, newEngine(), spec, rec, complete) }()
	select {
	case <-rec.ready:
	case err := <-done:
		t.Fatalf("migrate ended before it caught up: %v", err)
	case <-ctx.Done():
		t.Fatal("never caught up")
	}
	src.Exec(t, db,
		`ALTER TABLE items ADD COLUMN price numeric(10,2) DEFAULT 1.5`,
		`INSERT INTO items VALUES (2000, 'priced', 9.99)`,
		`ALTER TABLE items RENAME COLUMN name TO title`,
		`UPDATE items SET title = 'renamed' WHERE id = 5`,
		`CREATE TABLE fresh (id int PRIMARY KEY, note text)`,
		`INSERT INTO fresh SELECT g, 'n' || g FROM generate_series(1, 50) g`,
		`CREATE INDEX CONCURRENTLY items_title ON items (title)`,
		`DROP TABLE scratch`,
		`ALTER TABLE items ADD COLUMN c2 int; UPDATE items SET c2 = id WHERE id < 10; ALTER TABLE fresh ADD COLUMN d2 int DEFAULT 7; INSERT INTO fresh (id, note) VALUES (99, 'after')`,
		`ALTER TABLE items DROP COLUMN price`,
		`CREATE TABLE other.ignored (id int)`, // not selected: not replayed
	)
	complete <- engine.CompleteWaitForSync
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Complete did not end the job")
	}
	var idx, scratch, ignored bool
	c := dst.Conn(t, db)
	if err := c.QueryRow(context.Background(), `SELECT to_regclass('public.items_title') IS NOT NULL, to_regclass('public.scratch') IS NOT NULL,
		to_regclass('other.ignored') IS NOT NULL`).Scan(&idx, &scratch, &ignored); err != nil || !idx || scratch || ignored {
		t.Errorf("target: index made %v, scratch kept %v, other.ignored made %v (%v)", idx, scratch, ignored, err)
	}
	var capture bool
	if err := src.Conn(t, db).QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname LIKE 'opendts%')`).Scan(&capture); err != nil || capture {
		t.Errorf("the DDL capture is left on the source (%v)", err)
	}
	// Schema other was not selected.
	src.Exec(t, db, "DROP SCHEMA other CASCADE")
	sameRows(t, src, dst, db)
}
