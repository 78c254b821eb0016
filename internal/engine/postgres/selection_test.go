package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/testpg"
)

// tablesOf lists schema.table of every user table of db.
func tablesOf(t *testing.T, s *testpg.Server, db string) []string {
	t.Helper()
	rows, err := s.Conn(t, db).Query(context.Background(), `SELECT n.nspname || '.' || c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v') AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func migrate(t *testing.T, spec engine.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := driver.Migrate(ctx, newEngine(), spec, &recorder{}, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

// DatabaseInfo at database, schema and table level moves what it names
// and nothing else.
func TestMigrateSelection(t *testing.T) {
	src, dst := testpg.Shared(t)
	db1 := src.NewDatabase(t, "sel1")
	db2 := src.NewDatabase(t, "sel2")
	db3 := src.NewDatabase(t, "sel3")
	for _, db := range []string{db1, db2, db3} {
		t.Cleanup(func() { dst.DropDatabase(db) })
		src.Exec(t, db,
			`CREATE SCHEMA s1`, `CREATE SCHEMA s2`,
			`CREATE TABLE s1.t1 (id int PRIMARY KEY, v text)`, `CREATE TABLE s1.t2 (id int PRIMARY KEY)`,
			`CREATE TABLE s1.t3 (id serial PRIMARY KEY)`, `CREATE TABLE s2.t1 (id int)`,
			`CREATE TABLE public.p (id int)`,
			`INSERT INTO s1.t1 SELECT g, g::text FROM generate_series(1, 100) g`,
			`INSERT INTO s1.t3 DEFAULT VALUES`, `INSERT INTO s2.t1 VALUES (7)`)
	}
	migrate(t, engine.Spec{
		JobID: "pg-sel-" + db1, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{
			{Database: db1, Schema: "s1", Tables: []string{"t1", "t3"}},
			{Database: db2},
			{Database: db3, Schema: "s2"},
			// public exists in every new database: pg_dump -n public
			// creates it again.
			{Database: db3, Schema: "public"},
		},
		Source: endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull,
	})
	if got, want := tablesOf(t, dst, db1), []string{"s1.t1", "s1.t3"}; !slices.Equal(got, want) {
		t.Errorf("%s on the target: %v, want %v", db1, got, want)
	}
	if got, want := tablesOf(t, dst, db2), tablesOf(t, src, db2); !slices.Equal(got, want) {
		t.Errorf("%s on the target: %v, want %v", db2, got, want)
	}
	if got, want := tablesOf(t, dst, db3), []string{"public.p", "s2.t1"}; !slices.Equal(got, want) {
		t.Errorf("%s on the target: %v, want %v", db3, got, want)
	}
	var n int
	if err := dst.Conn(t, db1).QueryRow(context.Background(), "SELECT count(*) FROM s1.t1").Scan(&n); err != nil || n != 100 {
		t.Errorf("s1.t1 has %d rows on the target (%v), want 100", n, err)
	}
	// The owned sequence of a selected table comes along, at its value.
	var next int
	if err := dst.Conn(t, db1).QueryRow(context.Background(), "SELECT nextval('s1.t3_id_seq')").Scan(&next); err != nil || next != 2 {
		t.Errorf("s1.t3_id_seq nextval = %d (%v), want 2", next, err)
	}
	sameRows(t, src, dst, db2)
}

// A whole-instance job moves every database with user objects and the
// roles, their memberships and grants; superuser roles only with
// IsOverrideRoot.
func TestMigrateWholeInstanceWithRoles(t *testing.T) {
	src, dst := testpg.Start(t), testpg.Start(t)
	src.Exec(t, "postgres",
		`CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw' CREATEDB CONNECTION LIMIT 7`,
		`CREATE ROLE readers NOLOGIN`,
		`CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE readers`,
		`ALTER ROLE alice SET work_mem = '8MB'`,
		`CREATE ROLE boss SUPERUSER LOGIN`,
		`CREATE DATABASE shop OWNER app_owner`,
		`CREATE DATABASE empty_one`)
	src.Exec(t, "shop",
		`SET ROLE app_owner`,
		`CREATE SCHEMA sales`,
		`CREATE TABLE sales.orders (id int PRIMARY KEY, total numeric)`,
		`INSERT INTO sales.orders SELECT g, g * 10 FROM generate_series(1, 50) g`,
		`GRANT USAGE ON SCHEMA sales TO readers`,
		`GRANT SELECT ON sales.orders TO readers`)
	migrate(t, engine.Spec{
		JobID: "pg-whole", MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectWholeInstance,
		Source: endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull,
	})
	ctx := context.Background()
	c := dst.Conn(t, "postgres")
	var dbs []string
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1`)
	if err == nil {
		dbs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || !slices.Contains(dbs, "shop") || !slices.Contains(dbs, "empty_one") {
		t.Fatalf("target databases %v (%v), want shop and empty_one", dbs, err)
	}
	var limit int
	var createdb bool
	if err := c.QueryRow(ctx, `SELECT rolconnlimit, rolcreatedb FROM pg_roles WHERE rolname = 'app_owner'`).Scan(&limit, &createdb); err != nil || limit != 7 || !createdb {
		t.Errorf("app_owner on the target: limit %d createdb %v (%v)", limit, createdb, err)
	}
	var member bool
	if err := c.QueryRow(ctx, `SELECT pg_has_role('alice', 'readers', 'MEMBER')`).Scan(&member); err != nil || !member {
		t.Errorf("alice is not a member of readers on the target (%v)", err)
	}
	var boss bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'boss')`).Scan(&boss); err != nil || boss {
		t.Errorf("the superuser role boss was created without IsOverrideRoot (%v)", err)
	}
	var owner string
	if err := dst.Conn(t, "shop").QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 'orders'`).Scan(&owner); err != nil || owner != "app_owner" {
		t.Errorf("sales.orders owned by %q on the target (%v), want app_owner", owner, err)
	}
	var canRead bool
	if err := dst.Conn(t, "shop").QueryRow(ctx, `SELECT has_table_privilege('alice', 'sales.orders', 'SELECT')`).Scan(&canRead); err != nil || !canRead {
		t.Errorf("alice cannot read sales.orders on the target (%v)", err)
	}
	// alice logs in on the target with her password from the source.
	ac, err := pgx.Connect(ctx, dst.URL("alice", "alice-pw", "shop"))
	if err != nil {
		t.Fatalf("alice cannot log in on the target with her source password: %v", err)
	}
	ac.Close(ctx)
	sameRows(t, src, dst, "shop")
}
