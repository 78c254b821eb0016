package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine/budget"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// Many small tables, foreign keys and a view: the tables are created in
// parallel (parents before children), small tables keep their secondary
// indexes and are copied in batches, a large one gets its indexes after
// its rows; a copy stopped half way resumes and ends with the same data.
func TestManySmallTables(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "many")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	const n = 120
	var stmts, names []string
	for i := range n {
		name := fmt.Sprintf("t%03d", i)
		names = append(names, name)
		stmts = append(stmts,
			fmt.Sprintf("CREATE TABLE `%s`.%s (id INT PRIMARY KEY, v VARCHAR(50), k INT, KEY k (k))", db, name),
			fmt.Sprintf("INSERT INTO `%s`.%s SELECT seq, CONCAT('v', seq), seq %% 7 FROM `%s`.seq_1_to_%d", db, name, db, i%5),
		)
	}
	stmts = append(stmts,
		// Names sort children first, so only the waves put parents first.
		"CREATE TABLE `"+db+"`.a_parent (id INT PRIMARY KEY, v INT, KEY v (v))",
		"CREATE TABLE `"+db+"`.a_child (id INT PRIMARY KEY, p INT, KEY p (p), FOREIGN KEY (p) REFERENCES `"+db+"`.a_parent (id))",
		"INSERT INTO `"+db+"`.a_parent VALUES (1, 1), (2, 2)",
		"INSERT INTO `"+db+"`.a_child VALUES (1, 1), (2, 1), (3, 2)",
		"CREATE VIEW `"+db+"`.v_child AS SELECT c.id, p.v FROM `"+db+"`.a_child c JOIN `"+db+"`.a_parent p ON p.id = c.p",
		"CREATE TABLE `"+db+"`.big (id INT PRIMARY KEY, k INT, KEY k (k))",
		"INSERT INTO `"+db+"`.big SELECT seq, seq % 100 FROM `"+db+"`.seq_1_to_30000",
		"ANALYZE TABLE `"+db+"`.big",
	)
	src.Exec(t, stmts...)
	names = append(names, "a_parent", "a_child", "big")

	spec := fullSpec("dts-many01", src, dst, db)
	e := mysql.New(mysql.Config{ChunkRows: 5000, Workers: 3})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, spec, &recorder{}, nil) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var marks int
		_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = 'dts-many01'").Scan(&marks)
		if marks >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Log("the copy finished before it was cancelled; the resume has nothing to do")
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled migration: %v", err)
	}
	spec.Resume = true
	rec := &recorder{}
	if err := driver.Migrate(context.Background(), e, spec, rec, nil); err != nil {
		t.Fatalf("resumed migration: %v", err)
	}
	// A table copied in a batch reports its rows like any other (its
	// baseline depends on where the stop came).
	checkTableProgress(t, rec.tables, "t004", -1, 4)
	checkTableProgress(t, rec.tables, "t119", -1, 4)
	if got, want := checksums(t, dst, db, names...), checksums(t, src, db, names...); got != want {
		t.Errorf("target %s\nsource %s", got, want)
	}
	for _, name := range []string{"t007", "a_child", "big"} {
		if got, want := showCreate(t, dst, db, name), showCreate(t, src, db, name); got != want {
			t.Errorf("%s on the target:\n%s\non the source:\n%s", name, got, want)
		}
	}
	var rows int
	if err := dst.DB(t).QueryRow("SELECT COUNT(*) FROM `" + db + "`.v_child").Scan(&rows); err != nil || rows != 3 {
		t.Errorf("the view on the target: %d rows, %v", rows, err)
	}
}

func showCreate(t *testing.T, s *testdb.Server, db, table string) string {
	t.Helper()
	var name, stmt string
	if err := s.DB(t).QueryRow("SHOW CREATE TABLE `"+db+"`.`"+table+"`").Scan(&name, &stmt); err != nil {
		t.Fatal(err)
	}
	// AUTO_INCREMENT and statistics aside, the definition must be the
	// source's.
	return strings.TrimSpace(stmt)
}

// Two jobs sharing a budget of one copy worker take turns chunk by chunk
// and both end with the source's data.
func TestJobsShareTheCopyBudget(t *testing.T) {
	src, dst := testdb.Shared(t)
	b := budget.New(1)
	e := mysql.New(mysql.Config{ChunkRows: 2000, Workers: 3, Budget: b})
	var dbs []string
	for i := range 2 {
		db := src.NewDatabase(t, fmt.Sprintf("budget%d", i))
		t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
		src.Exec(t,
			"CREATE TABLE `"+db+"`.r (id INT PRIMARY KEY, v VARCHAR(40))",
			"INSERT INTO `"+db+"`.r SELECT seq, CONCAT('row ', seq) FROM `"+db+"`.seq_1_to_20000",
			"ANALYZE TABLE `"+db+"`.r",
		)
		dbs = append(dbs, db)
	}
	errs := make(chan error, len(dbs))
	for i, db := range dbs {
		go func() {
			errs <- driver.Migrate(context.Background(), e, fullSpec(fmt.Sprintf("dts-budget%02d", i), src, dst, db), &recorder{}, nil)
		}()
	}
	for range dbs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, db := range dbs {
		if got, want := checksums(t, dst, db, "r"), checksums(t, src, db, "r"); got != want {
			t.Errorf("%s: target %s, source %s", db, got, want)
		}
	}
	if b.InUse() != 0 {
		t.Errorf("%d slots still held after both jobs", b.InUse())
	}
}
