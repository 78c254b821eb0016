package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/testpg"
)

// More check tests: what tables selected one by one use, column
// collations, bounded sessions, cancellation, and the comparisons the
// items rely on (extension versions, locales), which one machine's two
// clusters cannot show failing.

func TestCheckColumnCollationMissingOnTarget(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	src.Exec(t, db, `CREATE TABLE sales.words (w text COLLATE "de-x-icu" PRIMARY KEY)`)
	// The target's catalog loses the collation for the test's length.
	dst.Exec(t, "postgres", `DROP COLLATION pg_catalog."de-x-icu"`)
	t.Cleanup(func() {
		dst.Exec(t, "postgres", `CREATE COLLATION pg_catalog."de-x-icu" (provider = icu, locale = 'de')`)
	})
	items := runCheck(t, New(Config{}), superSpec(src, dst, engine.ObjectSelection{Database: db, Schema: "sales"}))
	it := find(t, items, "EncodingCheck")
	expect(t, it, engine.ResultFail, "column "+db+".sales.words.w uses collation \"de-x-icu\", which the target lacks")
	expectAdvice(t, it, "pg_import_system_collations")
}

func TestCheckTableDependencies(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := shop(t, src)
	src.Exec(t, db,
		"CREATE SCHEMA kinds",
		"CREATE TYPE kinds.mood AS ENUM ('ok', 'sad')",
		"CREATE DOMAIN kinds.positive AS int CHECK (VALUE > 0)",
		"CREATE FUNCTION kinds.next_code() RETURNS text LANGUAGE sql AS $$SELECT 'x'$$",
		"CREATE FUNCTION kinds.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
		"CREATE TABLE sales.moods (id int PRIMARY KEY, m kinds.mood, ms kinds.mood[], q kinds.positive, code text DEFAULT kinds.next_code())",
		"CREATE TRIGGER touch BEFORE UPDATE ON sales.moods FOR EACH ROW EXECUTE FUNCTION kinds.touch()",
		"CREATE TABLE sales.plain (id int PRIMARY KEY, o sales.orders)",
	)
	spec := superSpec(src, dst, engine.ObjectSelection{Database: db, Schema: "sales", Tables: []string{"moods", "plain"}})
	items := runCheck(t, New(Config{}), spec)
	it := find(t, items, "DependencyCheck")
	expect(t, it, engine.ResultFail, "table "+db+".sales.moods uses type kinds.mood", "type kinds.positive",
		"function kinds.next_code()", "function kinds.touch()", "table "+db+".sales.plain uses the row type of sales.orders")
	expectAdvice(t, it, `{"Database":"`+db+`","Schema":"kinds"}`)

	// With the schema selected whole, or the table's row type selected,
	// nothing is missing.
	spec.Objects = []engine.ObjectSelection{{Database: db, Schema: "sales", Tables: []string{"moods", "plain", "orders"}}, {Database: db, Schema: "kinds"}}
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "DependencyCheck"), engine.ResultPass, "3 table(s)")

	// Or with them on the target already.
	dst.CreateDatabase(t, db)
	dst.Exec(t, db, "CREATE SCHEMA kinds", "CREATE TYPE kinds.mood AS ENUM ('ok', 'sad')",
		"CREATE DOMAIN kinds.positive AS int CHECK (VALUE > 0)",
		"CREATE FUNCTION kinds.next_code() RETURNS text LANGUAGE sql AS $$SELECT 'x'$$",
		"CREATE FUNCTION kinds.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$")
	spec.Objects = []engine.ObjectSelection{{Database: db, Schema: "sales", Tables: []string{"moods"}}}
	items = runCheck(t, New(Config{}), spec)
	expect(t, find(t, items, "DependencyCheck"), engine.ResultPass)
}

// A check of many databases keeps few sessions open.
func TestCheckSessionsBounded(t *testing.T) {
	src, dst := testpg.Shared(t)
	var sel []engine.ObjectSelection
	var names []string
	for range maxCheckConns + 3 {
		db := src.NewDatabase(t, "many")
		src.Exec(t, db, "CREATE TABLE public.t (id int PRIMARY KEY)")
		sel = append(sel, engine.ObjectSelection{Database: db})
		names = append(names, db)
	}
	s := &checkSide{e: New(Config{}), name: "source", field: "SrcInfo", ep: pgEndpoint(src, "postgres", "")}
	defer s.close()
	ctx := context.Background()
	for _, db := range append(names, names...) {
		if _, err := s.conn(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	// A closed session's backend takes a moment to leave pg_stat_activity.
	var open int
	watch := src.Conn(t, "postgres")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'opendts' AND datname = ANY($1)`, names).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open <= maxCheckConns || time.Now().After(deadline) {
			break
		}
	}
	if open > maxCheckConns {
		t.Errorf("%d sessions open in %d databases, want at most %d", open, len(names), maxCheckConns)
	}
	items := runCheck(t, New(Config{}), superSpec(src, dst, sel...))
	for _, it := range items {
		expect(t, it, engine.ResultPass)
	}
}

func TestCheckCancelled(t *testing.T) {
	src, dst := testpg.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(Config{}).Check(ctx, superSpec(src, dst, engine.ObjectSelection{Database: "x"}), nil); err == nil {
		t.Error("a cancelled check returned no error")
	}
}

func TestCheckVersionText(t *testing.T) {
	for num, want := range map[int]string{150004: "15.4", 170000: "17.0", 90624: "9.6.24", 100023: "10.23"} {
		if got := versionText(num); got != want {
			t.Errorf("versionText(%d) = %q, want %q", num, got, want)
		}
	}
	if majorOf(150004) != 15 || majorOf(90624) != 9 {
		t.Error("majorOf")
	}
}

func TestCheckExtensionVersionOrder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.2", "1.2", 0}, {"1.10", "1.9", 1}, {"3.3.2", "3.3", 1}, {"3.0beta1", "3.0", -1},
		{"2.5.0dev", "2.5.0", -1}, {"1.0", "1.1", -1}, {"3.4.0", "3.3.4", 1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := compareVersions(c.b, c.a); got != -c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
	got := extensionShortfalls(
		[]extVersion{{"postgis", "3.4.2"}, {"hstore", "1.8"}, {"vector", "0.7.0"}, {"pg_trgm", "1.6"}},
		map[string]string{"postgis": "3.3.2", "hstore": "1.8", "pg_trgm": "1.6"})
	want := []string{"postgis 3.4.2 (the target offers 3.3.2)", "vector 0.7.0 (not installed on the target server)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("extensionShortfalls = %q, want %q", got, want)
	}
	if p := extensionPackage("postgis", 15); p != "postgresql-15-postgis-3" {
		t.Errorf("extensionPackage(postgis) = %q", p)
	}
}

func TestCheckTargetLocales(t *testing.T) {
	tl := &targetLocales{libc: map[string]bool{"c": true, "posix": true, normLocale("en_US.utf8"): true},
		icu: map[string]bool{"und": true}, hasICU: true, major: 15}
	if p := tl.cannotCreate(dbLocale{encoding: "UTF8", collate: "en_US.UTF-8", ctype: "en_US.UTF-8", provider: "c"}); len(p) != 0 {
		t.Errorf("en_US.UTF-8 against en_US.utf8: %q", p)
	}
	if p := tl.cannotCreate(dbLocale{encoding: "UTF8", collate: "de_DE.UTF-8", ctype: "C", provider: "c"}); len(p) != 1 || !strings.Contains(p[0], "de_DE.UTF-8") {
		t.Errorf("de_DE.UTF-8: %q", p)
	}
	if p := tl.cannotCreate(dbLocale{encoding: "UTF8", collate: "C", ctype: "C", provider: "i", icu: "fr-FR"}); len(p) != 1 || !strings.Contains(p[0], "fr-FR") {
		t.Errorf("ICU fr-FR: %q", p)
	}
	if p := tl.cannotCreate(dbLocale{encoding: "UTF8", collate: "C", ctype: "C", provider: "b", icu: "C.UTF-8"}); len(p) != 1 || !strings.Contains(p[0], "17") {
		t.Errorf("builtin provider: %q", p)
	}
	tl.major = 14
	if p := tl.cannotCreate(dbLocale{encoding: "UTF8", collate: "C", ctype: "C", provider: "i", icu: "und"}); len(p) != 1 || !strings.Contains(p[0], "15 or later") {
		t.Errorf("ICU on 14: %q", p)
	}
	tl.major, tl.hasICU = 15, false
	if p := tl.cannotCreate(dbLocale{encoding: "UTF8", collate: "C", ctype: "C", provider: "i", icu: "und"}); len(p) != 1 || !strings.Contains(p[0], "without ICU") {
		t.Errorf("no ICU: %q", p)
	}
}
