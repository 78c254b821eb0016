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
