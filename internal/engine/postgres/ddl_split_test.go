package postgres

import (
	"slices"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"ALTER TABLE a ADD x int", []string{"ALTER TABLE a ADD x int"}},
		{"ALTER TABLE a ADD x int; INSERT INTO a VALUES (';');", []string{"ALTER TABLE a ADD x int", "INSERT INTO a VALUES (';')"}},
		{`CREATE TABLE "a;b" (c text DEFAULT 'x'';y'); -- c; d` + "\n" + `DROP TABLE z`, []string{`CREATE TABLE "a;b" (c text DEFAULT 'x'';y')`, "-- c; d\nDROP TABLE z"}},
		{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql; SELECT 2", []string{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql", "SELECT 2"}},
		{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", []string{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql"}},
		{`SELECT E'a\';b'; /* x; /* nested; */ y; */ ALTER TABLE t ADD c int`, []string{`SELECT E'a\';b'`, "/* x; /* nested; */ y; */ ALTER TABLE t ADD c int"}},
		{"  ; -- only a comment; \n", nil},
	} {
		if got := splitStatements(c.in); !slices.Equal(got, c.want) {
			t.Errorf("splitStatements(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDDLStatementAndConcurrently(t *testing.T) {
	for s, want := range map[string]bool{
		"ALTER TABLE a ADD x int": true, "/* c */ create index i on t (a)": true, "INSERT INTO a VALUES (1)": false,
		"SELECT 1": false, "SELECT * INTO new_t FROM t": true, "comment on table t is 'x'": true,
	} {
		if got := ddlStatement(s); got != want {
			t.Errorf("ddlStatement(%q) = %v", s, got)
		}
	}
	if got := inTransaction("CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)"); got != "CREATE UNIQUE INDEX i ON t (a)" {
		t.Errorf("inTransaction: %q", got)
	}
	if got := inTransaction("DROP INDEX CONCURRENTLY IF EXISTS i"); got != "DROP INDEX IF EXISTS i" {
		t.Errorf("inTransaction: %q", got)
	}
}

func TestReplicationDDL(t *testing.T) {
	for s, want := range map[string]bool{
		"CREATE PUBLICATION p FOR ALL TABLES": true, "drop subscription s": true,
		"ALTER PUBLICATION p ADD TABLE t": true, "CREATE TABLE publication (id int)": false,
	} {
		if got := replicationDDL(s); got != want {
			t.Errorf("replicationDDL(%q) = %v", s, got)
		}
	}
}

func TestOwnEntry(t *testing.T) {
	for line, want := range map[string]bool{
		"3457; 3466 16410 EVENT TRIGGER - opendts_log_ddl postgres":                   true,
		"3458; 6104 16411 PUBLICATION - opendts_dts_abc postgres":                     true,
		"3459; 6106 16412 PUBLICATION TABLE public opendts_dts_abc items postgres":    true,
		"3460; 6237 16413 PUBLICATION TABLES IN SCHEMA - opendts_dts_abc s1 postgres": true,
		"3461; 6104 16414 PUBLICATION - app_pub postgres":                             false,
		"3462; 1259 16415 TABLE public opendts_notes postgres":                        false,
		";3458; 6104 16411 PUBLICATION - opendts_dts_abc postgres":                    false,
	} {
		if got := ownEntry(line); got != want {
			t.Errorf("ownEntry(%q) = %v, want %v", line, got, want)
		}
	}
}
