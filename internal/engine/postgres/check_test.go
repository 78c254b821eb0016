package postgres

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/testpg"
)

// These tests build every failing setup for real on the shared source and
// target clusters: thin roles, missing and clashing objects, unlogged
// tables, large objects, existing roles. Each works in databases and roles
// of its own, and none runs in parallel (some look at the whole instance).

// TestMain (testpg.Main) is in migrate_test.go.

func pgEndpoint(s *testpg.Server, user, password string) engine.Endpoint {
	return engine.Endpoint{DatabaseType: "postgresql", Host: s.Host, Port: s.Port, User: user, Password: password}
}

// shop creates a source database with a schema, keyed tables, a serial
// sequence and a view.
func shop(t *testing.T, src *testpg.Server) string {
	t.Helper()
	db := src.NewDatabase(t, "shop")
	src.Exec(t, db,
		"CREATE SCHEMA sales",
		"CREATE TABLE sales.orders (id bigserial PRIMARY KEY, note text COLLATE \"C\")",
		"CREATE TABLE sales.items (sku text NOT NULL UNIQUE, qty int)",
		"CREATE VIEW sales.big_orders AS SELECT id FROM sales.orders WHERE id > 100",
		"CREATE TABLE public.config (k text PRIMARY KEY, v text)",
	)
	return db
}

func superSpec(src, dst *testpg.Server, objects ...engine.ObjectSelection) engine.Spec {
	return engine.Spec{
		JobID:         "dts-pgcheck",
		MigrateType:   engine.MigrateFull,
		MigrateObject: engine.MigrateObjectSelected,
		Objects:       objects,
		Source:        pgEndpoint(src, "postgres", ""),
		Target:        pgEndpoint(dst, "postgres", ""),
	}
}

// runCheck runs the check and verifies what every run must do: report
// progress up to the total, give advice with every non-pass, and never
// show a password.
func runCheck(t *testing.T, e *Engine, spec engine.Spec) []engine.CheckItem {
	t.Helper()
	last, total := 0, 0
	items, err := e.Check(context.Background(), spec, func(done, n int) {
		if done != last+1 {
			t.Errorf("progress went from %d to %d", last, done)
		}
		last, total = done, n
	})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if last != len(items) || total != len(items) {
		t.Errorf("progress ended at %d/%d for %d items", last, total, len(items))
	}
	for _, it := range items {
		if it.Result != engine.ResultPass && it.Result != engine.ResultNotRun && it.Advice == "" {
			t.Errorf("%s is %s without advice: %s", it.Name, it.Result, it.Message)
		}
		for _, pw := range []string{spec.Source.Password, spec.Target.Password} {
			if pw != "" && (strings.Contains(it.Message, pw) || strings.Contains(it.Advice, pw)) {
				t.Errorf("%s shows a password: %s / %s", it.Name, it.Message, it.Advice)
			}
		}
	}
	return items
}

// find returns the item called name whose message contains all of words.
func find(t *testing.T, items []engine.CheckItem, name string, words ...string) engine.CheckItem {
	t.Helper()
next:
	for _, it := range items {
		if it.Name != name {
			continue
		}
		for _, w := range words {
			if !strings.Contains(it.Message, w) {
				continue next
			}
		}
		return it
	}
	t.Fatalf("no %s item mentioning %q in:\n%s", name, words, dump(items))
	return engine.CheckItem{}
}

// expect asserts the verdict and that the message names the cause.
func expect(t *testing.T, it engine.CheckItem, result string, words ...string) {
	t.Helper()
	if it.Result != result {
		t.Errorf("%s = %s, want %s: %s (advice: %s)", it.Name, it.Result, result, it.Message, it.Advice)
	}
	for _, w := range words {
		if !strings.Contains(it.Message, w) {
			t.Errorf("%s message does not mention %q: %s", it.Name, w, it.Message)
		}
	}
}

func expectAdvice(t *testing.T, it engine.CheckItem, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(it.Advice, w) {
			t.Errorf("%s advice does not mention %q: %s", it.Name, w, it.Advice)
		}
	}
}

func dump(items []engine.CheckItem) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("  " + it.Name + " " + it.Result + ": " + it.Message + "\n")
		if it.Advice != "" {
			b.WriteString("      advice: " + it.Advice + "\n")
		}
	}
	return b.String()
}

// snapshotTarget is what a check must leave as it found it: the target's
// databases and the maintenance database's schemas.
func snapshotTarget(t *testing.T, dst *testpg.Server) string {
	t.Helper()
	c := dst.Conn(t, "postgres")
	var s string
	if err := c.QueryRow(context.Background(), `SELECT (SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database)
		|| '|' || (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace)`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckGoodSetupPasses(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	other := src.NewDatabase(t, "ledger")
	src.Exec(t, other, "CREATE TABLE public.entries (id int PRIMARY KEY)", "CREATE TABLE public.unused (x int)")
	// An existing target database is fine while nothing selected is in it.
	dst.CreateDatabase(t, other)
	dst.Exec(t, other, "CREATE TABLE public.not_selected (id int)")

	spec := superSpec(src, dst, engine.ObjectSelection{Database: db},
		engine.ObjectSelection{Database: other, Schema: "public", Tables: []string{"entries"}})
	spec.TargetReadOnly = true
	before := snapshotTarget(t, dst)
	items := runCheck(t, New(Config{}), spec)
	if after := snapshotTarget(t, dst); after != before {
		t.Errorf("the check changed the target:\nbefore %s\nafter  %s", before, after)
	}

	want := []string{"ConnectDBCheck", "ConnectDBCheck", "VersionCheck", "SrcPrivilegeCheck", "DstPrivilegeCheck",
		"ObjectsExistCheck", "DstConflictCheck", "DependencyCheck", "ExtensionCheck", "EncodingCheck", "PrimaryKeyCheck",
		"UnloggedTableCheck", "LargeObjectCheck", "ReadOnlyCheck"}
	if len(items) != len(want) {
		t.Fatalf("got %d items, want %d:\n%s", len(items), len(want), dump(items))
	}
	for i, it := range items {
		if it.Name != want[i] {
			t.Errorf("item %d is %s, want %s", i, it.Name, want[i])
		}
		if it.Result != engine.ResultPass {
			t.Errorf("%s = %s: %s (advice: %s)", it.Name, it.Result, it.Message, it.Advice)
		}
	}
	expect(t, items[0], engine.ResultPass, "source", `database "postgres"`)
	expect(t, items[1], engine.ResultPass, "target")
	expect(t, find(t, items, "VersionCheck"), engine.ResultPass, "PostgreSQL 15", "pg_dump", "pg_restore")
	expect(t, find(t, items, "ObjectsExistCheck"), engine.ResultPass, "2 database(s)", "3 schema(s)", "4 table(s)")
	expect(t, find(t, items, "UnloggedTableCheck"), engine.ResultPass, "temporary tables", "never migrated")
	if t.Failed() {
		t.Log(dump(items))
	}
}

// freeAddr is a loopback port nothing listens on.
func freeAddr(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestCheckConnectionFailures(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	user := dst.NewRole(t, "pgcheck_pw", "right-secret", "CREATEDB")

	spec := superSpec(src, dst, engine.ObjectSelection{Database: db})
	spec.Source.Port = freeAddr(t)
	spec.Source.Password = "s3cret-source-pw"
	spec.Target = pgEndpoint(dst, user, "Wr0ng-target-pw")
	items := runCheck(t, New(Config{}), spec)

	srcItem := find(t, items, "ConnectDBCheck", "source")
	expect(t, srcItem, engine.ResultFail, "connection refused")
	expectAdvice(t, srcItem, "SrcInfo.Port", "listen_addresses")
	dstItem := find(t, items, "ConnectDBCheck", "target")
	expect(t, dstItem, engine.ResultFail, "authentication failed", user)
	expectAdvice(t, dstItem, "DstInfo.Password")
	for _, it := range items[2:] {
		expect(t, it, engine.ResultNotRun, "could not be reached")
	}
	expect(t, find(t, items, "DstConflictCheck"), engine.ResultNotRun, "source")

	// With the source reachable, what needs only the source runs.
	spec.Source = pgEndpoint(src, "postgres", "")
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ConnectDBCheck", "source"), engine.ResultPass)
	expect(t, find(t, items, "ObjectsExistCheck"), engine.ResultPass)
	expect(t, find(t, items, "SrcPrivilegeCheck"), engine.ResultPass)
	expect(t, find(t, items, "PrimaryKeyCheck"), engine.ResultPass)
	expect(t, find(t, items, "DstConflictCheck"), engine.ResultNotRun, "target")
	expect(t, find(t, items, "VersionCheck"), engine.ResultNotRun, "target")
}

func TestCheckMaintenanceDatabaseRefused(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	user := src.NewRole(t, "pgcheck_noconn", "pw-noconn")
	src.Exec(t, "postgres", "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
	t.Cleanup(func() { src.Exec(t, "postgres", "GRANT CONNECT ON DATABASE postgres TO PUBLIC") })
	src.Exec(t, db, "GRANT USAGE ON SCHEMA sales TO "+user, "GRANT SELECT ON ALL TABLES IN SCHEMA sales, public TO "+user,
		"GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO "+user)

	// On the target, the user may enter the selected database only: the
	// job's state in postgres is out of its reach.
	tuser := dst.NewRole(t, "pgcheck_tnoconn", "pw-tnoconn", "CREATEDB")
	dst.CreateDatabase(t, db)
	dst.Exec(t, "postgres", "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC", "ALTER DATABASE "+db+" OWNER TO "+tuser)
	t.Cleanup(func() { dst.Exec(t, "postgres", "GRANT CONNECT ON DATABASE postgres TO PUBLIC") })

	spec := superSpec(src, dst, engine.ObjectSelection{Database: db})
	spec.Source = pgEndpoint(src, user, "pw-noconn")
	spec.Target = pgEndpoint(dst, tuser, "pw-tnoconn")
	items := runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ConnectDBCheck", "source"), engine.ResultPass, `database "`+db+`"`, `maintenance database "postgres" refused`)
	expect(t, find(t, items, "ConnectDBCheck", "target"), engine.ResultPass, `database "`+db+`"`, `maintenance database "postgres" refused`)
	expect(t, find(t, items, "SrcPrivilegeCheck"), engine.ResultPass)
	expect(t, find(t, items, "ObjectsExistCheck"), engine.ResultPass)
	it := find(t, items, "DstPrivilegeCheck")
	expect(t, it, engine.ResultFail, "CONNECT on the maintenance database postgres", "_opendts")
	expectAdvice(t, it, "GRANT CONNECT, CREATE ON DATABASE postgres TO "+tuser+";")
}

func TestCheckSourcePrivileges(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	src.Exec(t, db,
		"CREATE SCHEMA hidden",
		"CREATE TABLE hidden.secrets (id int PRIMARY KEY)",
		"CREATE TABLE public.guarded (id int PRIMARY KEY, owner_name text)",
		"ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY",
	)
	user := src.NewRole(t, "pgcheck_reader", "pw-reader")
	// It may read sales.items only: not sales.orders, not its sequence,
	// not schema hidden.
	src.Exec(t, db, "GRANT USAGE ON SCHEMA sales TO "+user, "GRANT SELECT ON sales.items, public.config, public.guarded TO "+user)

	// And it may not enter a second selected database.
	closed := src.NewDatabase(t, "closed")
	src.Exec(t, "postgres", "REVOKE CONNECT ON DATABASE "+closed+" FROM PUBLIC")

	spec := superSpec(src, dst, engine.ObjectSelection{Database: db}, engine.ObjectSelection{Database: closed})
	spec.Source = pgEndpoint(src, user, "pw-reader")
	items := runCheck(t, New(Config{}), spec)
	it := find(t, items, "SrcPrivilegeCheck")
	expect(t, it, engine.ResultFail, user, "SELECT on table "+db+".sales.orders", "SELECT on sequence "+db+".sales.orders_id_seq",
		"USAGE on schema "+db+".hidden", "row-level security", "guarded", "CONNECT on database "+closed)
	expectAdvice(t, it, "GRANT SELECT ON sales.orders TO "+user+";", "GRANT USAGE ON SCHEMA hidden TO "+user+";",
		"GRANT SELECT ON SEQUENCE sales.orders_id_seq", "pg_read_all_data", "GRANT CONNECT ON DATABASE "+closed+" TO "+user+";")
	// The other items say briefly what they could not look at.
	expect(t, find(t, items, "PrimaryKeyCheck"), engine.ResultWarning, "database "+closed+" not checked: the source user may not connect to it")
	spec.Objects = spec.Objects[:1]

	// Full + incremental: what logical replication needs.
	src.Exec(t, db, "GRANT USAGE ON SCHEMA hidden TO "+user, "GRANT SELECT ON ALL TABLES IN SCHEMA sales, hidden TO "+user,
		"GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO "+user, "ALTER TABLE public.guarded DISABLE ROW LEVEL SECURITY")
	spec.MigrateType = engine.MigrateFullAndIncremental
	items = runCheck(t, New(Config{}), spec)
	it = find(t, items, "SrcPrivilegeCheck")
	expect(t, it, engine.ResultWarning, "REPLICATION")
	expectAdvice(t, it, "ALTER ROLE "+user+" REPLICATION;")
	it = find(t, items, "LogicalReplicationCheck")
	expect(t, it, engine.ResultFail, "lacks the REPLICATION attribute")
	expectAdvice(t, it, "ALTER ROLE "+user+" REPLICATION;")
	// sales.items has a unique key but no primary key: its UPDATEs could
	// not be decoded.
	it = find(t, items, "ReplicaIdentityCheck")
	expect(t, it, engine.ResultFail, db+".sales.items")
	expectAdvice(t, it, "ALTER TABLE sales.items REPLICA IDENTITY FULL;")
	expect(t, find(t, items, "PublicationCheck"), engine.ResultFail, "does not own", db+".sales.orders")
	expect(t, find(t, items, "TargetApplyRoleCheck"), engine.ResultPass, "superuser")

	// As a superuser, with every table identified: ready. A target user
	// that is not a superuser cannot apply with replica role.
	src.Exec(t, db, "ALTER TABLE sales.items REPLICA IDENTITY FULL")
	spec.Source = pgEndpoint(src, "postgres", "")
	writer := dst.NewRole(t, "pgcheck_applier", "pw-applier", "CREATEDB")
	spec.Target = pgEndpoint(dst, writer, "pw-applier")
	items = runCheck(t, New(Config{}), spec)
	for _, name := range []string{"LogicalReplicationCheck", "ReplicaIdentityCheck", "PublicationCheck", "LongTransactionCheck"} {
		expect(t, find(t, items, name), engine.ResultPass)
	}
	it = find(t, items, "TargetApplyRoleCheck")
	expect(t, it, engine.ResultFail, writer, "session_replication_role")
	expectAdvice(t, it, "SUPERUSER")
}

func TestCheckTargetPrivileges(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	existing := src.NewDatabase(t, "existing")
	src.Exec(t, existing, "CREATE TABLE public.t (id int PRIMARY KEY)")
	dst.CreateDatabase(t, existing)
	user := dst.NewRole(t, "pgcheck_writer", "pw-writer")

	spec := superSpec(src, dst, engine.ObjectSelection{Database: db}, engine.ObjectSelection{Database: existing})
	spec.Target = pgEndpoint(dst, user, "pw-writer")
	items := runCheck(t, New(Config{}), spec)
	it := find(t, items, "DstPrivilegeCheck")
	expect(t, it, engine.ResultFail, "CREATEDB, to create database "+db, "CREATE on the maintenance database postgres",
		"CREATE on the existing database "+existing)
	expectAdvice(t, it, "ALTER ROLE "+user+" CREATEDB;", "GRANT CREATE ON DATABASE postgres TO "+user+";",
		"GRANT CREATE ON DATABASE "+existing+" TO "+user+";")

	// With the privileges, superuser-only objects of the source are
	// named (the database is created owned by the target user, which is
	// no member of the source's owner).
	dst.Exec(t, "postgres", "ALTER ROLE "+user+" CREATEDB", "GRANT CREATE ON DATABASE postgres TO "+user,
		"GRANT CONNECT, CREATE ON DATABASE "+existing+" TO "+user)
	t.Cleanup(func() { dst.Exec(t, "postgres", "REVOKE CREATE ON DATABASE postgres FROM "+user) })
	src.Exec(t, db,
		"CREATE FUNCTION sales.my_abs(int4) RETURNS int4 LANGUAGE internal IMMUTABLE AS 'int4abs'",
		"CREATE FUNCTION public.no_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$",
		"CREATE EVENT TRIGGER no_ddl ON ddl_command_start EXECUTE FUNCTION public.no_ddl()",
	)
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "DstPrivilegeCheck"), engine.ResultWarning, "only a superuser", "sales.my_abs(integer) in language internal", "event trigger no_ddl")

	// A table into an existing database needs CREATE on its schema there
	// (PostgreSQL 15 gives none on public to ordinary users).
	spec2 := spec
	spec2.Objects = []engine.ObjectSelection{{Database: existing, Schema: "public", Tables: []string{"t"}}}
	items = runCheck(t, New(Config{}), spec2)
	it = find(t, items, "DstPrivilegeCheck")
	expect(t, it, engine.ResultFail, "CREATE on the existing schema "+existing+".public")
	expectAdvice(t, it, "in database "+existing+": GRANT CREATE ON SCHEMA public TO "+user+";")

	// A whole instance needs CREATEROLE too.
	spec.MigrateObject, spec.Objects = engine.MigrateObjectWholeInstance, nil
	items = runCheck(t, New(Config{}), spec)
	it = find(t, items, "DstPrivilegeCheck")
	expect(t, it, engine.ResultFail, "CREATEROLE")
	expectAdvice(t, it, "ALTER ROLE "+user+" CREATEROLE;")
}

func TestCheckObjectsMissingAndConflicts(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	whole := src.NewDatabase(t, "whole")
	src.Exec(t, whole, "CREATE TABLE public.a (id int PRIMARY KEY)")

	spec := superSpec(src, dst,
		engine.ObjectSelection{Database: "no_such_db_pgcheck"},
		engine.ObjectSelection{Database: db, Schema: "nowhere"},
		engine.ObjectSelection{Database: db, Schema: "sales", Tables: []string{"orders", "ghost"}})
	items := runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ObjectsExistCheck"), engine.ResultFail, "database no_such_db_pgcheck", "schema "+db+".nowhere", "table "+db+".sales.ghost")

	// The target has the selected table, and a non-empty database of the
	// name of one selected whole.
	dst.CreateDatabase(t, db)
	dst.Exec(t, db, "CREATE SCHEMA sales", "CREATE TABLE sales.orders (id int)", "CREATE TABLE sales.unrelated (id int)")
	dst.CreateDatabase(t, whole)
	dst.Exec(t, whole, "CREATE TABLE public.leftover (id int)")
	spec = superSpec(src, dst, engine.ObjectSelection{Database: db, Schema: "sales", Tables: []string{"orders", "items"}},
		engine.ObjectSelection{Database: whole})
	items = runCheck(t, New(Config{}), spec)
	it := find(t, items, "DstConflictCheck")
	expect(t, it, engine.ResultFail, "table sales.orders in database "+db, "database "+whole+" exists and is not empty", "public.leftover")
	if strings.Contains(it.Message, "unrelated") {
		t.Errorf("a table not selected is named: %s", it.Message)
	}
	expectAdvice(t, it, "DROP TABLE sales.orders;", "DROP DATABASE "+whole+";")
	expect(t, find(t, items, "ObjectsExistCheck"), engine.ResultPass)

	// An empty existing database is no conflict.
	dst.Exec(t, whole, "DROP TABLE public.leftover")
	dst.Exec(t, db, "DROP TABLE sales.orders")
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "DstConflictCheck"), engine.ResultPass)
}

func TestCheckTablesKeysUnloggedLargeObjects(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	src.Exec(t, db,
		"CREATE TABLE public.events (at timestamptz, what text)",
		"CREATE TABLE public.nullable_unique (code text UNIQUE)",
		"CREATE UNLOGGED TABLE public.cache (k text PRIMARY KEY, v text)",
		"SELECT lo_create(0)", "SELECT lo_create(0)",
	)
	// Another session's temporary table: never migrated, and said so.
	if _, err := src.Conn(t, db).Exec(context.Background(), "CREATE TEMP TABLE scratch (x int)"); err != nil {
		t.Fatal(err)
	}
	spec := superSpec(src, dst, engine.ObjectSelection{Database: db})
	items := runCheck(t, New(Config{}), spec)
	it := find(t, items, "PrimaryKeyCheck")
	expect(t, it, engine.ResultWarning, "2 of 6", db+".public.events", db+".public.nullable_unique", "ctid")
	expectAdvice(t, it, "ADD PRIMARY KEY")
	it = find(t, items, "UnloggedTableCheck")
	expect(t, it, engine.ResultWarning, db+".public.cache", "not crash-safe", "incremental", "temporary tables", "(1 exist now)")
	expectAdvice(t, it, "ALTER TABLE public.cache SET LOGGED;")
	it = find(t, items, "LargeObjectCheck")
	expect(t, it, engine.ResultWarning, "2 in database "+db, "does not migrate large objects")
	expectAdvice(t, it, "pg_dump -Fc --data-only --blobs --exclude-table-data='*.*'", "pg_restore")

	// A structure-only job has no key or large-object item.
	spec.MigrateType = engine.MigrateStructure
	items = runCheck(t, New(Config{}), spec)
	for _, it := range items {
		if it.Name == "PrimaryKeyCheck" || it.Name == "LargeObjectCheck" {
			t.Errorf("structure-only job has %s", it.Name)
		}
	}
}

func TestCheckWholeInstanceRoles(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	shared := testpg.UniqueName("pgcheck_shared")
	for _, s := range []*testpg.Server{src, dst} {
		s.Exec(t, "postgres", "CREATE ROLE "+shared+" LOGIN")
		t.Cleanup(func() { s.DropRole(shared) })
	}
	boss := src.NewRole(t, "pgcheck_boss", "pw-boss", "SUPERUSER")
	spec := superSpec(src, dst)
	spec.MigrateObject = engine.MigrateObjectWholeInstance
	items := runCheck(t, New(Config{}), spec)
	it := find(t, items, "RoleConflictCheck")
	expect(t, it, engine.ResultWarning, shared, "left as they are", boss, "IsOverrideRoot=1")
	expectAdvice(t, it, "DROP ROLE "+shared+";")
	expect(t, find(t, items, "ObjectsExistCheck"), engine.ResultPass)

	spec.OverrideRoot = true
	items = runCheck(t, New(Config{}), spec)
	it = find(t, items, "RoleConflictCheck")
	if strings.Contains(it.Message, boss) {
		t.Errorf("with IsOverrideRoot=1 the superuser is still named: %s", it.Message)
	}

	// A source user that reads every table but not pg_authid (which
	// pg_read_all_data would let it read): the roles come without their
	// passwords.
	reader := src.NewRole(t, "pgcheck_readall", "pw-readall")
	src.Exec(t, db, "GRANT USAGE ON SCHEMA sales TO "+reader, "GRANT SELECT ON ALL TABLES IN SCHEMA sales, public TO "+reader,
		"GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO "+reader)
	spec.Source = pgEndpoint(src, reader, "pw-readall")
	items = runCheck(t, New(Config{}), spec)
	it = find(t, items, "SrcPrivilegeCheck")
	expect(t, it, engine.ResultWarning, "pg_authid", "without their passwords")
	expectAdvice(t, it, "ALTER ROLE")
}

func TestCheckReadOnlyNeedsOwner(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	dst.CreateDatabase(t, db) // owned by postgres
	user := dst.NewRole(t, "pgcheck_ro", "pw-ro", "CREATEDB")
	dst.Exec(t, "postgres", "GRANT CREATE ON DATABASE "+db+" TO "+user, "GRANT CREATE ON DATABASE postgres TO "+user)
	t.Cleanup(func() { dst.Exec(t, "postgres", "REVOKE CREATE ON DATABASE postgres FROM "+user) })
	spec := superSpec(src, dst, engine.ObjectSelection{Database: db})
	spec.Target = pgEndpoint(dst, user, "pw-ro")
	spec.TargetReadOnly = true
	items := runCheck(t, New(Config{}), spec)
	it := find(t, items, "ReadOnlyCheck")
	expect(t, it, engine.ResultFail, "database "+db+" (owned by postgres)")
	expectAdvice(t, it, "ALTER DATABASE "+db+" OWNER TO "+user+";")

	dst.Exec(t, "postgres", "ALTER DATABASE "+db+" OWNER TO "+user)
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ReadOnlyCheck"), engine.ResultPass)
}

func TestCheckToolsMissing(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	items := runCheck(t, New(Config{BinDir: t.TempDir()}), superSpec(src, dst, engine.ObjectSelection{Database: db}))
	it := find(t, items, "VersionCheck")
	expect(t, it, engine.ResultFail, "pg_dump not found")
	expectAdvice(t, it, "postgresql-client-15")
}

func TestCheckExtensionsAndEncodings(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	src.Exec(t, db, "CREATE EXTENSION citext", "CREATE TABLE public.people (email citext PRIMARY KEY)")
	latin := testpg.UniqueName("latin")
	src.Exec(t, "postgres", "CREATE DATABASE "+latin+" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
	t.Cleanup(func() { src.DropDatabase(latin) })
	dst.CreateDatabase(t, latin) // UTF8

	// A whole database: citext is available on the target; the LATIN1
	// database clashes with the UTF8 one already on the target.
	spec := superSpec(src, dst, engine.ObjectSelection{Database: db}, engine.ObjectSelection{Database: latin})
	items := runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ExtensionCheck"), engine.ResultPass, "1 extension(s)")
	it := find(t, items, "EncodingCheck")
	expect(t, it, engine.ResultFail, "database "+latin+" is LATIN1 on the source but UTF8 on the target")
	expectAdvice(t, it, "DROP DATABASE "+latin+";")

	// A table selection does not create extensions: the target database
	// must have citext first.
	dst.CreateDatabase(t, db)
	spec = superSpec(src, dst, engine.ObjectSelection{Database: db, Schema: "public", Tables: []string{"people"}})
	items = runCheck(t, New(Config{}), spec)
	it = find(t, items, "ExtensionCheck")
	expect(t, it, engine.ResultWarning, "citext (database "+db+")")
	expectAdvice(t, it, "CREATE EXTENSION citext;")
	expect(t, find(t, items, "EncodingCheck"), engine.ResultPass)
	dst.Exec(t, db, "CREATE EXTENSION citext")
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ExtensionCheck"), engine.ResultPass, "1 extension(s)")

	// A table that uses no extension type needs none; a database the
	// target lacks must be made first, as the job would make it.
	src.Exec(t, db, "CREATE EXTENSION hstore")
	spec = superSpec(src, dst, engine.ObjectSelection{Database: db, Schema: "sales", Tables: []string{"orders"}})
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "ExtensionCheck"), engine.ResultPass, "no extension")
	other := src.NewDatabase(t, "extdb")
	src.Exec(t, other, "CREATE EXTENSION hstore", "CREATE TABLE public.kv (id int PRIMARY KEY, attrs hstore)")
	spec = superSpec(src, dst, engine.ObjectSelection{Database: other, Schema: "public"})
	items = runCheck(t, New(Config{}), spec)
	it = find(t, items, "ExtensionCheck")
	expect(t, it, engine.ResultWarning, "hstore (database "+other+")")
	expectAdvice(t, it, "CREATE DATABASE "+other+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE", "then in it: CREATE EXTENSION hstore;")
}
