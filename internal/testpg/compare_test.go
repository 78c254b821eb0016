package testpg

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyDatabase copies db from src to dst the plain way, pg_dump --create
// piped into psql (the same name on dst, dropped when the test ends): the
// reference a migration is measured against.
func copyDatabase(t *testing.T, src, dst *Server, db string) {
	t.Helper()
	t.Cleanup(func() { dst.DropDatabase(db) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dump := exec.CommandContext(ctx, filepath.Join(BinDir(), "pg_dump"), "--create", "--no-password", "--dbname="+src.SuperURL(db))
	restore := exec.CommandContext(ctx, filepath.Join(BinDir(), "psql"), "-X", "-q", "--no-password", "-o", "/dev/null",
		"-v", "ON_ERROR_STOP=1", "-d", dst.SuperURL("postgres"))
	pipe, err := dump.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	restore.Stdin = pipe
	var dumpErr strings.Builder
	dump.Stderr = &dumpErr
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	out, rerr := restore.CombinedOutput()
	derr := dump.Wait()
	if derr != nil || rerr != nil {
		t.Fatalf("pg_dump | psql of %s: pg_dump: %v %s; psql: %v %s", db, derr, dumpErr.String(), rerr, out)
	}
}

func TestFidelityLoads(t *testing.T) {
	src, dst := Shared(t)
	db := src.NewDatabase(t, "fidelity")
	start := time.Now()
	f := LoadFidelity(t, src, db)
	t.Logf("fidelity.sql loaded in %v", time.Since(start).Round(time.Millisecond))
	checkCoverage(t, src, db)

	f.CreateRoles(t, dst)
	start = time.Now()
	copyDatabase(t, src, dst, db)
	t.Logf("pg_dump | psql in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	CompareDatabase(t, src, dst, db, db)
	t.Logf("compared in %v", time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}

	// Tampered: one bit of a 4 MiB value, one duplicate of a keyless row,
	// a sequence one step on, -0 turned into 0, a partition's row moved
	// out of the default partition, a grant taken back: each is found.
	dst.Exec(t, db,
		"UPDATE fid.toasted SET b = set_byte(b, 3000000, get_byte(b, 3000000) # 1) WHERE id = 1",
		"INSERT INTO fid.nokey VALUES (1, 'dup', 1.5)",
		"SELECT nextval('fid.counter')",
		"UPDATE fid.numbers SET f8 = 0 WHERE id = 4",
		"REVOKE SELECT ON fid.cheap FROM "+dumpIdent(f.Reader),
		"REFRESH MATERIALIZED VIEW fid.never_filled",
	)
	diffs := Differences(t, src, dst, db, db, CompareOptions{})
	all := strings.Join(diffs, "\n")
	for _, want := range []string{
		"table fid.toasted:", `first differing column "b"`,
		"table fid.nokey: 7 rows on the source, 8 on the target",
		"sequence fid.counter:",
		"table fid.numbers:", `first differing column "f8": source "-0", target "0"`,
		"-GRANT SELECT ON TABLE fid.cheap TO " + f.Reader,
		"materialized view fid.never_filled: populated false on the source, true on the target",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the tampered copy's differences do not mention %q:\n%s", want, all)
		}
	}
	if len(diffs) != 6 {
		t.Errorf("%d differences, want 6 (schema, 4 tables, 1 sequence):\n%s", len(diffs), all)
	}
}

// checkCoverage fails unless the loaded data set holds what it claims to:
// a guard against a later edit of fidelity.sql silently dropping a case.
func checkCoverage(t *testing.T, s *Server, db string) {
	t.Helper()
	checks := map[string]string{
		"index access methods": `SELECT count(DISTINCT am.amname) FROM pg_class c JOIN pg_am am ON am.oid = c.relam
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'i' AND n.nspname = 'fid'
			AND am.amname IN ('btree', 'hash', 'gin', 'gist', 'brin', 'spgist')`, // 6
		"partition strategies": `SELECT count(DISTINCT partstrat) FROM pg_partitioned_table`,                                                                                                   // 3
		"constraint kinds":     `SELECT count(DISTINCT contype) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'fid'`,                                    // c f p u t x
		"type kinds":           `SELECT count(DISTINCT typtype) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'fid' AND typtype IN ('e', 'c', 'd', 'r', 'm')`, // composite includes tables' row types
		"extensions":           `SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'`,
		"policies":             `SELECT count(*) FROM pg_policy`,
		"user rules":           `SELECT count(*) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'fid' AND r.rulename <> '_RETURN'`,
		"user triggers":        `SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal`,
		"inheritance children": `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE NOT c.relispartition`,
		"materialized views":   `SELECT count(*) FROM pg_matviews`,
		"procedures":           `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'fid' AND p.prokind = 'p'`,
		"generated columns":    `SELECT count(*) FROM pg_attribute WHERE attgenerated = 's'`,
		"identity columns":     `SELECT count(DISTINCT attidentity) FROM pg_attribute WHERE attidentity <> ''`,
		"big table rows":       `SELECT count(*) FROM fid.big`,
		"toasted MB":           `SELECT sum(coalesce(octet_length(b), 0) + coalesce(octet_length(t), 0)) / 1000000 FROM fid.toasted`,
		"keyless duplicates":   `SELECT count(*) - count(DISTINCT (a, b, c)) FROM fid.nokey`,
		"RLS tables":           `SELECT count(*) FROM pg_class WHERE relrowsecurity`,
	}
	want := map[string]int64{
		"index access methods": 6, "partition strategies": 3, "constraint kinds": 6, "type kinds": 5,
		"extensions": 3, "policies": 4, "user rules": 3, "user triggers": 5, "inheritance children": 2,
		"materialized views": 3, "procedures": 2, "generated columns": 1, "identity columns": 2,
		"big table rows": 250000, "toasted MB": 14, "keyless duplicates": 3, "RLS tables": 1,
	}
	c := s.Conn(t, db)
	for name, q := range checks {
		var got int64
		if err := c.QueryRow(context.Background(), q).Scan(&got); err != nil {
			t.Fatalf("coverage %s: %v", name, err)
		}
		if got < want[name] {
			t.Errorf("fidelity.sql: %s: %d, want at least %d", name, got, want[name])
		}
	}
}

// TestCompareDetects: every kind of difference the comparator exists to
// catch is caught, and named, on two databases of one cluster (whose
// different names must not count as a difference).
func TestCompareDetects(t *testing.T) {
	src, _ := Shared(t)
	orig := src.NewDatabase(t, "cmp_orig")
	src.Exec(t, orig,
		"CREATE TABLE t (id integer PRIMARY KEY, v text DEFAULT 'x', f float8, p point, j json)",
		`INSERT INTO t VALUES (1, 'a', 0, '(1,2)', '{"b":1,"a":2}'), (2, 'b', '-0', '(3,4)', '[]'), (3, NULL, 'NaN', NULL, 'null')`,
		"CREATE TABLE nokey (a integer, b text)",
		"INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (2, NULL)",
		"CREATE TABLE part (k integer, v text) PARTITION BY RANGE (k)",
		"CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (100)",
		"CREATE TABLE part_2 PARTITION OF part FOR VALUES FROM (100) TO (200)",
		"INSERT INTO part VALUES (1, 'one'), (150, 'many')",
		"CREATE SEQUENCE s",
		"SELECT nextval('s')",
		"CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM t",
	)
	cases := []struct {
		name   string
		tamper []string
		want   []string
	}{
		{"equal", nil, nil},
		{"changed value", []string{"UPDATE t SET v = 'B' WHERE id = 2"},
			[]string{`table public.t: 3 rows on the source, 3 on the target`, `first differing column "v": source "b", target "B"`}},
		{"minus zero", []string{"UPDATE t SET f = 0 WHERE id = 2"}, []string{`column "f": source "-0", target "0"`}},
		{"json key order", []string{`UPDATE t SET j = '{"a":2,"b":1}' WHERE id = 1`}, []string{`column "j"`}},
		{"missing row", []string{"DELETE FROM t WHERE id = 3"}, []string{"table public.t: 3 rows on the source, 2 on the target"}},
		{"extra duplicate", []string{"INSERT INTO nokey VALUES (1, 'x')"}, []string{"table public.nokey: 3 rows on the source, 4 on the target"}},
		{"missing duplicate", []string{"DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 1)"},
			[]string{"table public.nokey: 3 rows on the source, 2 on the target"}},
		{"row in another partition", []string{"UPDATE part SET k = 99 WHERE k = 150"},
			[]string{"table public.part_1: 1 rows on the source, 2 on the target", "table public.part_2: 1 rows on the source, 0 on the target"}},
		{"different default", []string{"ALTER TABLE t ALTER v SET DEFAULT 'y'"},
			[]string{"schema (pg_dump --schema-only) differs", "-    v text DEFAULT 'x'::text,", "+    v text DEFAULT 'y'::text,"}},
		{"extra index", []string{"CREATE INDEX t_v ON t (v)"}, []string{"+CREATE INDEX t_v ON public.t USING btree (v);"}},
		{"sequence value", []string{"SELECT nextval('s')"}, []string{"sequence public.s: last_value 1 is_called=true on the source, 2 is_called=true on the target"}},
		{"sequence not called", []string{"SELECT setval('s', 1, false)"}, []string{"is_called=false on the target"}},
		{"stale materialized view", []string{"INSERT INTO t VALUES (4)", "REFRESH MATERIALIZED VIEW mv", "DELETE FROM t WHERE id = 4"},
			[]string{`materialized view public.mv:`, `column "n": source "3", target "4"`}},
		{"unpopulated materialized view", []string{"REFRESH MATERIALIZED VIEW mv WITH NO DATA"},
			[]string{"materialized view public.mv: populated true on the source, false on the target"}},
		{"missing table", []string{"DROP TABLE nokey"}, []string{"table public.nokey: missing on the target"}},
		{"database comment", []string{"COMMENT ON DATABASE :db IS 'hello'"}, []string{"+COMMENT ON DATABASE <database> IS 'hello';"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := UniqueName("cmp_copy")
			src.Exec(t, "postgres", "CREATE DATABASE "+cp+" TEMPLATE "+orig)
			t.Cleanup(func() { src.DropDatabase(cp) })
			for _, q := range tc.tamper {
				src.Exec(t, cp, strings.ReplaceAll(q, ":db", cp))
			}
			diffs := Differences(t, src, src, orig, cp, CompareOptions{})
			all := strings.Join(diffs, "\n")
			if len(tc.want) == 0 && len(diffs) > 0 {
				t.Fatalf("an untouched copy differs:\n%s", all)
			}
			if len(tc.want) > 0 && len(diffs) == 0 {
				t.Fatalf("not detected")
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("the differences do not mention %q:\n%s", w, all)
				}
			}
			if testing.Verbose() && len(diffs) > 0 {
				t.Logf("reported:\n%s", all)
			}
		})
	}
}

// TestCompareRoleMap: a copy whose owner and grantee are other roles
// differs, unless the map says which target role stands for which source
// role.
func TestCompareRoleMap(t *testing.T) {
	src, _ := Shared(t)
	a1, a2 := src.NewRole(t, "owner_a", "pw"), src.NewRole(t, "reader_a", "pw")
	b1, b2 := src.NewRole(t, "owner_b", "pw"), src.NewRole(t, "reader_b", "pw")
	one, two := src.NewDatabase(t, "roles_one"), src.NewDatabase(t, "roles_two")
	for _, x := range []struct{ db, owner, reader string }{{one, a1, a2}, {two, b1, b2}} {
		src.Exec(t, x.db,
			"CREATE TABLE t (id integer PRIMARY KEY)",
			"ALTER TABLE t OWNER TO "+x.owner,
			"GRANT SELECT ON t TO "+x.reader,
			"ALTER TABLE t ENABLE ROW LEVEL SECURITY",
			"CREATE POLICY p ON t FOR SELECT TO "+x.reader+" USING (id > 0)",
		)
	}
	if diffs := Differences(t, src, src, one, two, CompareOptions{}); len(diffs) == 0 {
		t.Errorf("different owners and grantees are not detected")
	}
	opt := CompareOptions{Roles: map[string]string{a1: b1, a2: b2}}
	if diffs := Differences(t, src, src, one, two, opt); len(diffs) > 0 {
		t.Errorf("with the role map, still different:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestUnifiedDiff(t *testing.T) {
	// Changes 7 common lines apart make two hunks (6 apart would share one).
	a := strings.Split("1 2 3 4 5 6 7 8 9 10 11 12 13", " ")
	b := strings.Split("1 2 3 4 5 six 7 8 9 10 11 12 13 14", " ")
	got := unifiedDiff(a, b, "a", "b")
	want := "--- a\n+++ b\n@@ -3,7 +3,7 @@\n 3\n 4\n 5\n-6\n+six\n 7\n 8\n 9\n@@ -11,3 +11,4 @@\n 11\n 12\n 13\n+14"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if d := unifiedDiff(a, a, "a", "b"); d != "" {
		t.Errorf("equal inputs give %q", d)
	}
}
