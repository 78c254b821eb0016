package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// The fidelity tests migrate testdata/fidelity.sql, a database holding
// every case a faithful copy must keep, from the shared source to the
// shared target, and compare the two byte for byte (testdb.Compare*).
// Each uses a database and a job id of its own; the target database does
// not exist beforehand, since creating it is part of the migration.

// TestFidelityDataSet loads the data set on both servers under one name and
// compares them: the set must load on MariaDB, and must compare equal to
// itself, or the other tests would prove nothing.
func TestFidelityDataSet(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "fidelity_self")
	dst.CreateDatabase(t, db)
	loadSQL(t, src, db, "fidelity.sql")
	loadSQL(t, dst, db, "fidelity.sql")
	testdb.CompareDatabase(t, src, dst, db)
}

func TestFullMigrationFidelity(t *testing.T) {
	src, dst, db := fidelitySource(t)
	migrate(t, fidelitySpec(src, dst, "dts-fidelity-"+db, engine.MigrateFull, engine.ObjectSelection{Database: db}))
	testdb.CompareDatabase(t, src, dst, db)
}

// The same through INSERTs, as against a target that forbids LOAD DATA
// LOCAL (local_infile=OFF).
func TestFullMigrationFidelityWithInserts(t *testing.T) {
	src, dst, db := fidelitySource(t)
	migrateWith(t, mysql.Config{DisableLoadData: true}, fidelitySpec(src, dst, "dts-inserts-"+db, engine.MigrateFull, engine.ObjectSelection{Database: db}))
	testdb.CompareDatabase(t, src, dst, db)
}

func TestStructureOnly(t *testing.T) {
	src, dst, db := fidelitySource(t)
	migrate(t, fidelitySpec(src, dst, "dts-structure-"+db, engine.MigrateStructure, engine.ObjectSelection{Database: db}))
	testdb.CompareSchema(t, src, dst, db)

	conn := dst.DB(t)
	for _, o := range testdb.Objects(t, dst, db) {
		if o.Kind != "BASE TABLE" {
			continue
		}
		var n int
		q := "SELECT COUNT(*) FROM `" + db + "`.`" + strings.ReplaceAll(o.Name, "`", "``") + "`"
		if err := conn.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("target: %s: %v", q, err)
		}
		if n != 0 {
			t.Errorf("a structure-only migration copied %d rows into `%s`", n, o.Name)
		}
	}
}

func TestSelectionLeavesOthersBehind(t *testing.T) {
	src, dst, db := fidelitySource(t)
	// Neither table has a trigger, and no view reads them: nothing else
	// comes with them.
	selected := []string{"order", "blobs"}
	migrate(t, fidelitySpec(src, dst, "dts-selection-"+db, engine.MigrateFull,
		engine.ObjectSelection{Database: db, Tables: selected}))
	testdb.CompareTables(t, src, dst, db, selected...)

	var others []string
	for _, o := range testdb.Objects(t, src, db) {
		if !slices.Contains(selected, o.Name) {
			others = append(others, o.Name)
		}
	}
	testdb.CompareAbsent(t, dst, db, others...)
	// Nor anything the source never had, such as the engine's own state.
	for _, o := range testdb.Objects(t, dst, db) {
		if !slices.Contains(selected, o.Name) {
			t.Errorf("the target's `%s` holds %s `%s`, which was not selected", db, strings.ToLower(o.Kind), o.Name)
		}
	}
}

// fidelitySource loads the data set into a new source database, and drops
// the target database the migration will create when the test ends.
func fidelitySource(t *testing.T) (src, dst *testdb.Server, db string) {
	t.Helper()
	src, dst = testdb.Shared(t)
	db = src.NewDatabase(t, "fidelity")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	testdb.CompareAbsent(t, dst, db)
	loadSQL(t, src, db, "fidelity.sql")
	return src, dst, db
}

// fidelitySpec is a job between the shared servers as root. The job id
// must be unique: the engine keeps checkpoints on the target by job id.
func fidelitySpec(src, dst *testdb.Server, jobID string, migrateType engine.MigrateType, objects ...engine.ObjectSelection) engine.Spec {
	return engine.Spec{
		JobID:           jobID,
		MigrateType:     migrateType,
		MigrateObject:   engine.MigrateObjectSelected,
		Objects:         objects,
		Source:          endpoint(src, "root", ""),
		Target:          endpoint(dst, "root", ""),
		ConsistencyType: 5,
	}
}

// migrate runs spec to the end and checks what it reported.
func migrate(t *testing.T, spec engine.Spec) *recordingReporter {
	t.Helper()
	return migrateWith(t, mysql.Config{}, spec)
}

func migrateWith(t *testing.T, cfg mysql.Config, spec engine.Spec) *recordingReporter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep := &recordingReporter{}
	start := time.Now()
	if err := driver.Migrate(ctx, mysql.New(cfg), spec, rep, nil); err != nil {
		t.Fatalf("Migrate %s: %v", spec.JobID, err)
	}
	t.Logf("Migrate %s took %v", spec.JobID, time.Since(start).Round(time.Millisecond))
	rep.check(t)
	return rep
}

// recordingReporter records what a migration reports; the engine may call
// it from several goroutines.
type recordingReporter struct {
	mu       sync.Mutex
	plans    [][]engine.StepDef
	started  []string
	progress [][2]int // overall, current step
	caughtUp int
}

func (r *recordingReporter) Plan(steps []engine.StepDef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plans = append(r.plans, slices.Clone(steps))
}

func (r *recordingReporter) StepStarted(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, id)
}

func (r *recordingReporter) Progress(overall, currentStep int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, [2]int{overall, currentStep})
}

func (r *recordingReporter) Lag(seconds, bytes int64) {}

func (r *recordingReporter) Verified([]engine.TableVerification) {}

func (r *recordingReporter) TableProgress(engine.TableProgress) {}

func (r *recordingReporter) CaughtUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caughtUp++
}

// check verifies the report of a finished structure or full job: a plan,
// steps from it, progress within 0..100 that ends at 100, and no CaughtUp
// (that is for full + incremental jobs).
func (r *recordingReporter) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.plans) == 0 {
		t.Fatal("the migration reported no plan")
	}
	if len(r.started) == 0 {
		t.Error("the migration started no step")
	}
	for _, id := range r.started {
		if !slices.ContainsFunc(r.plans[len(r.plans)-1], func(s engine.StepDef) bool { return s.ID == id }) {
			t.Errorf("step %q started but is not in the plan %+v", id, r.plans[len(r.plans)-1])
		}
	}
	for _, p := range r.progress {
		if p[0] < 0 || p[0] > 100 || p[1] < 0 || p[1] > 100 {
			t.Errorf("progress out of range: %v", p)
		}
	}
	if len(r.progress) == 0 || r.progress[len(r.progress)-1][0] != 100 {
		t.Errorf("the last progress is not 100: %v", r.progress)
	}
	if r.caughtUp > 0 {
		t.Error("a job without an incremental phase reported CaughtUp")
	}
}

// loadSQL runs the statements of testdata/file on s, with {{db}} replaced by
// db, in order on one session, so that SET statements hold for the
// statements after them. fidelity.sql describes the format.
func loadSQL(t *testing.T, s *testdb.Server, db, file string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := splitSQL(strings.ReplaceAll(string(text), "{{db}}", db))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := s.DB(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v\n%s", file, err, q)
		}
	}
}

// splitSQL cuts a testdata file into statements: see fidelity.sql.
func splitSQL(text string) ([]string, error) {
	var stmts, cur []string
	block := false
	flush := func() {
		stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";"))
		cur = nil
	}
	for n, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "-- begin":
			if block || len(cur) > 0 {
				return nil, fmt.Errorf("line %d: -- begin inside a statement", n+1)
			}
			block = true
		case trimmed == "-- end":
			if !block {
				return nil, fmt.Errorf("line %d: -- end without -- begin", n+1)
			}
			flush()
			block = false
		case block:
			cur = append(cur, line)
		case trimmed == "" || strings.HasPrefix(trimmed, "--"):
		default:
			cur = append(cur, line)
			if strings.HasSuffix(trimmed, ";") {
				flush()
			}
		}
	}
	if block || len(cur) > 0 {
		return nil, errors.New("the file ends inside a statement")
	}
	return stmts, nil
}

// Every value of the data set also arrives through the binlog: once a full
// + incremental job has caught up, the source deletes every row of every
// table (row images with every type, which tables without a key must
// match byte for byte on the target) and inserts them again; after
// Complete the target equals the source.
func TestIncrementalFidelity(t *testing.T) {
	// Folded tables' rows go as REPLACE statements in small groups and
	// through LOAD DATA in large ones: both must carry every value.
	t.Run("statements", func(t *testing.T) { incrementalFidelity(t, mysql.Config{}) })
	t.Run("load data", func(t *testing.T) { incrementalFidelity(t, mysql.Config{LoadDataMinRows: 1}) })
}

func incrementalFidelity(t *testing.T, cfg mysql.Config) {
	src, dst, db := fidelitySource(t)
	stash := src.NewDatabase(t, "fidelity_stash")
	type table struct{ name, cols string }
	var tables []table
	rows, err := src.DB(t).Query(`SELECT t.TABLE_NAME, GROUP_CONCAT(CONCAT('`+"`"+`', REPLACE(c.COLUMN_NAME, '`+"`"+`', '`+"``"+`'), '`+"`"+`') ORDER BY c.ORDINAL_POSITION)
		FROM information_schema.TABLES t JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
		WHERE t.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' AND c.EXTRA NOT LIKE '%GENERATED%'
		GROUP BY t.TABLE_NAME`, db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tb table
		if err := rows.Scan(&tb.name, &tb.cols); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, tb)
	}
	rows.Close()
	q := func(d, name string) string {
		return "`" + d + "`.`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	for _, tb := range tables {
		src.Exec(t, "CREATE TABLE "+q(stash, tb.name)+" AS SELECT "+tb.cols+" FROM "+q(db, tb.name))
	}

	spec := fidelitySpec(src, dst, "dts-cdcfidelity-"+db, engine.MigrateFullAndIncremental, engine.ObjectSelection{Database: db})
	e := mysql.New(cfg)
	run := startCDC(t, e, spec)
	run.caughtUp(t)

	// Foreign keys order the tables: what fails now goes in a later round.
	conn := src.DB(t)
	each := func(what string, stmt func(table) string) {
		todo := tables
		for round := 0; len(todo) > 0; round++ {
			var again []table
			var last error
			for _, tb := range todo {
				if _, err := conn.Exec(stmt(tb)); err != nil {
					again, last = append(again, tb), err
				}
			}
			if round > len(tables) {
				t.Fatalf("%s: %v", what, last)
			}
			todo = again
		}
	}
	each("delete", func(tb table) string { return "DELETE FROM " + q(db, tb.name) })
	each("insert", func(tb table) string {
		return "INSERT INTO " + q(db, tb.name) + " (" + tb.cols + ") SELECT " + tb.cols + " FROM " + q(stash, tb.name)
	})
	run.finish(t)
	testdb.CompareDatabase(t, src, dst, db)
}
