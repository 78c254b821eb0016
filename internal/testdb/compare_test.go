package testdb_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/opendts/opendts/internal/testdb"
)

// These tests prove the comparison can fail: a pair of databases is built
// identical on the shared source and target, one thing is changed on the
// target, and the comparison must name it.

// recorder stands in for the test's testing.TB, so that a comparison's
// failure is inspected instead of failing the test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
	fatal  bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }

func (r *recorder) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprint(args...))
}

func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func (r *recorder) Fatal(args ...any) {
	r.Error(args...)
	r.FailNow()
}

// FailNow ends the goroutine that record started, as testing.T's does.
func (r *recorder) FailNow() {
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fail() { r.Error("Fail called") }

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errors) > 0
}

func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) Log(args ...any) { r.Logf("%s", fmt.Sprint(args...)) }

// record runs f with a recorder in a goroutine of its own, where a Fatal
// can end it without ending the test. A Fatal is a broken fixture, not a
// difference, so it fails the test.
func record(t *testing.T, f func(tb testing.TB)) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	if r.fatal {
		t.Fatalf("the comparison could not run:\n%s", strings.Join(r.errors, "\n"))
	}
	return r
}

// pair builds the same small database, under the same name, on both
// servers and returns its name. It has a keyed table with a BLOB, a
// TIMESTAMP and a FLOAT, a table without a key holding a duplicate row, a trigger, a
// view and a function.
func pair(t *testing.T) (src, dst *testdb.Server, db string) {
	t.Helper()
	src, dst = testdb.Shared(t)
	db = src.NewDatabase(t, "cmp")
	dst.CreateDatabase(t, db)
	q := "`" + db + "`."
	for _, s := range []*testdb.Server{src, dst} {
		s.Exec(t,
			"CREATE TABLE "+q+"t (id INT PRIMARY KEY, b BLOB, ts TIMESTAMP(6) NULL, c INT COMMENT 'count', s VARCHAR(10), f FLOAT)",
			"CREATE TABLE "+q+"nokey (a INT, s VARCHAR(10))",
			"CREATE TRIGGER "+q+"t_bi BEFORE INSERT ON "+q+"t FOR EACH ROW SET NEW.c = NEW.c + 1",
			"CREATE FUNCTION "+q+"twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
			"INSERT INTO "+q+"t VALUES (1, REPEAT(x'00FF', 600), '2024-02-29 12:00:00.000001', 1, '', 0.1), (2, NULL, NULL, NULL, NULL, NULL)",
			"INSERT INTO "+q+"nokey VALUES (1, 'a'), (1, 'a'), (1, 'a'), (2, NULL)",
		)
	}
	src.Exec(t, "CREATE VIEW "+q+"v AS SELECT id FROM "+q+"t")
	// Definers may differ: a migration may run as another account.
	dst.Exec(t, "CREATE DEFINER = 'someone'@'%' VIEW "+q+"v AS SELECT id FROM "+q+"t")
	return src, dst, db
}

func TestCompareIdentical(t *testing.T) {
	src, dst, db := pair(t)
	r := record(t, func(tb testing.TB) { testdb.CompareDatabase(tb, src, dst, db) })
	if len(r.errors) > 0 {
		t.Fatalf("identical databases reported as different:\n%s", strings.Join(r.errors, "\n"))
	}
	if !strings.Contains(strings.Join(r.logs, "\n"), "`someone`@`%`") {
		t.Errorf("the view's two definers were not logged: %q", r.logs)
	}
}

// TestCompareFindsDifferences changes one thing per case on the target;
// the report must contain every one of want.
func TestCompareFindsDifferences(t *testing.T) {
	cases := []struct {
		name   string
		change []string // on the target; {{db}} is the database
		want   []string
	}{{
		name:   "one byte of a BLOB",
		change: []string{"UPDATE {{db}}.t SET b = INSERT(b, 700, 1, x'AB') WHERE id = 1"},
		want: []string{"row (`id`=1): column `b` is 1200 bytes on the source, 1200 on the target, " +
			"first difference at byte 699: x'FF00FF00FF00FF00' vs x'AB00FF00FF00FF00'"},
	}, {
		name:   "a TIMESTAMP by a microsecond",
		change: []string{"UPDATE {{db}}.t SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = 1"},
		want:   []string{"column `ts` is 2024-02-29"},
	}, {
		name:   "an empty string become NULL",
		change: []string{"UPDATE {{db}}.t SET s = NULL WHERE id = 1"},
		want:   []string{"row (`id`=1): column `s` is \"\" on the source, NULL on the target"},
	}, {
		// Both print as 0.1 with a FLOAT's 6 digits.
		name:   "a FLOAT in its last bit",
		change: []string{"UPDATE {{db}}.t SET f = 0.1000001 WHERE id = 1"},
		want:   []string{"column `f` is 0.10000000149011612 on the source, 0.10000009834766388 on the target"},
	}, {
		name:   "a duplicate row lost",
		change: []string{"DELETE FROM {{db}}.nokey WHERE a = 1 LIMIT 1"},
		want: []string{"table `nokey`: 4 rows on the source, 3 on the target",
			"row (`a`=1, `s`=\"a\") appears 3 times on the source, 2 on the target"},
	}, {
		name:   "a missing row",
		change: []string{"DELETE FROM {{db}}.t WHERE id = 2"},
		want:   []string{"table `t`: row (`id`=2) only on the source"},
	}, {
		name:   "a column comment",
		change: []string{"ALTER TABLE {{db}}.t MODIFY c INT COMMENT 'counter'"},
		want:   []string{"table `t`: SHOW CREATE TABLE differs at line 5", "COMMENT 'count'", "COMMENT 'counter'"},
	}, {
		name: "a trigger body",
		change: []string{"DROP TRIGGER {{db}}.t_bi",
			"CREATE TRIGGER {{db}}.t_bi BEFORE INSERT ON {{db}}.t FOR EACH ROW SET NEW.c = NEW.c + 2"},
		want: []string{"trigger `t_bi`: ACTION_STATEMENT is", "NEW.c + 1", "NEW.c + 2"},
	}, {
		name:   "a function body",
		change: []string{"DROP FUNCTION {{db}}.twice", "CREATE FUNCTION {{db}}.twice(x INT) RETURNS INT DETERMINISTIC RETURN x + x"},
		want:   []string{"function `twice`: SHOW CREATE FUNCTION differs"},
	}, {
		name:   "a view body",
		change: []string{"CREATE OR REPLACE DEFINER = 'someone'@'%' VIEW {{db}}.v AS SELECT id FROM {{db}}.t WHERE id > 1"},
		want:   []string{"view `v`: SHOW CREATE VIEW differs", "`.`t`.`id` > 1"},
	}, {
		name:   "a table only on the target",
		change: []string{"CREATE TABLE {{db}}.extra (id INT)"},
		want:   []string{"base table `extra` exists only on the target"},
	}, {
		name:   "the database's collation",
		change: []string{"ALTER DATABASE {{db}} COLLATE utf8mb4_bin"},
		want:   []string{"database `cmp_", "SHOW CREATE DATABASE differs"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, db := pair(t)
			for _, q := range tc.change {
				dst.Exec(t, strings.ReplaceAll(q, "{{db}}", "`"+db+"`"))
			}
			r := record(t, func(tb testing.TB) { testdb.CompareDatabase(tb, src, dst, db) })
			report := strings.Join(r.errors, "\n")
			if report == "" {
				t.Fatal("the difference was not reported")
			}
			t.Logf("the report reads:\n%s", report)
			for _, w := range tc.want {
				if !strings.Contains(report, w) {
					t.Errorf("the report lacks %q:\n%s", w, report)
				}
			}
		})
	}
}

func TestCompareTablesAndAbsent(t *testing.T) {
	src, dst, db := pair(t)
	dst.Exec(t, "UPDATE `"+db+"`.nokey SET a = 9")
	r := record(t, func(tb testing.TB) { testdb.CompareTables(tb, src, dst, db, "t") })
	if len(r.errors) > 0 {
		t.Errorf("CompareTables looked beyond its table:\n%s", strings.Join(r.errors, "\n"))
	}

	r = record(t, func(tb testing.TB) { testdb.CompareAbsent(tb, dst, db, "nokey", "t_bi", "twice", "nothing") })
	for _, w := range []string{"base table `nokey`", "trigger `t_bi`", "function `twice`"} {
		if !strings.Contains(strings.Join(r.errors, "\n"), w) {
			t.Errorf("CompareAbsent did not report %s: %q", w, r.errors)
		}
	}
	r = record(t, func(tb testing.TB) { testdb.CompareAbsent(tb, dst, db) })
	if len(r.errors) != 1 {
		t.Errorf("CompareAbsent missed a database that exists: %q", r.errors)
	}
	r = record(t, func(tb testing.TB) { testdb.CompareAbsent(tb, dst, db+"_none") })
	if len(r.errors) != 0 {
		t.Errorf("CompareAbsent reported a database that does not exist: %q", r.errors)
	}
}
