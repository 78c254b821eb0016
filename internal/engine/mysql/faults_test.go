package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// syncBuffer is a log sink safe for the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitChunks(t *testing.T, dst *testdb.Server, jobID string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var got int
		_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = ?", jobID).Scan(&got)
		if got >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("job %s never committed %d chunks", jobID, n)
}

// The target dropping every connection of the copy in the middle is
// retried: the chunks in flight start over on new connections and the
// result is whole.
func TestTargetDropsConnectionsMidCopy(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "drops")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, v VARCHAR(200))",
		"INSERT INTO `"+db+"`.t SELECT seq, REPEAT(CHAR(65 + seq % 26), 150) FROM `"+db+"`.seq_1_to_150000",
		"ANALYZE TABLE `"+db+"`.t")
	var logs syncBuffer
	e := mysql.New(mysql.Config{ChunkRows: 3000, Workers: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	spec := fullSpec("dts-drops", src, dst, db)
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(context.Background(), e, spec, &recorder{}, nil) }()
	waitChunks(t, dst, "dts-drops", 3)
	// Kill the copy's connections on the target (they are the ones in the
	// job's database or loading data), as a restarting proxy would.
	rows, err := dst.DB(t).Query("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND (DB = ? OR INFO LIKE 'LOAD DATA%')", db)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		dst.DB(t).Exec("KILL CONNECTION " + strconv.FormatInt(id, 10))
	}
	t.Logf("killed %d target connections", len(ids))
	if len(ids) == 0 {
		t.Fatal("no connection of the copy was found to kill: the test would prove nothing")
	}
	if err := <-done; err != nil {
		t.Fatalf("migration after dropped connections: %v", err)
	}
	if got, want := checksums(t, dst, db, "t"), checksums(t, src, db, "t"); got != want {
		t.Errorf("target %s, source %s", got, want)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry in the log:\n%s", logs.String())
	}
}

// A source that goes away for good fails the migration after the retry
// window, with an error that says what failed, rather than hanging.
func TestSourceGoneFails(t *testing.T) {
	src := testdb.Start(t)
	_, dst := testdb.Shared(t)
	src.Exec(t, "CREATE DATABASE gone", "CREATE TABLE gone.t (id INT PRIMARY KEY, v TEXT)",
		"INSERT INTO gone.t SELECT seq, REPEAT('y', 500) FROM gone.seq_1_to_200000", "ANALYZE TABLE gone.t")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS gone") })
	e := mysql.New(mysql.Config{ChunkRows: 2000, Workers: 1, RetryFor: 3 * time.Second, DialTimeout: time.Second})
	done := make(chan error, 1)
	go func() {
		done <- driver.Migrate(context.Background(), e, fullSpec("dts-gone", src, dst, "gone"), &recorder{}, nil)
	}()
	waitChunks(t, dst, "dts-gone", 2)
	pid, err := os.ReadFile(filepath.Join(src.Dir, "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	syscall.Kill(n, syscall.SIGKILL)
	start := time.Now()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "still failing after") {
			t.Fatalf("error = %v", err)
		}
		t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("the migration hung after the source went away")
	}
}

// A whole-instance job moves the accounts and their grants (root stays as
// it is), keeps definers, and holds the target read-only while it runs.
func TestWholeInstanceAccountsAndReadOnly(t *testing.T) {
	src, dst := testdb.Start(t), testdb.Start(t)
	src.Exec(t,
		"CREATE DATABASE app CHARACTER SET latin1",
		"CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO app.items VALUES (1, 'café'), (2, NULL)",
		"CREATE USER 'appuser'@'%' IDENTIFIED BY 'app-secret'",
		"GRANT SELECT, INSERT ON app.* TO 'appuser'@'%'",
		"CREATE DEFINER='appuser'@'%' SQL SECURITY DEFINER VIEW app.names AS SELECT name FROM app.items",
	)
	var readOnlyDuring bool
	rec := &hookRecorder{onStep: func(id string) {
		if id == "loader" {
			dst.DB(t).QueryRow("SELECT @@GLOBAL.read_only").Scan(&readOnlyDuring)
		}
	}}
	spec := engine.Spec{
		JobID: "dts-whole", MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectWholeInstance,
		Source:         engine.Endpoint{Host: src.Host, Port: src.Port, User: "root"},
		Target:         engine.Endpoint{Host: dst.Host, Port: dst.Port, User: "root"},
		TargetReadOnly: true,
	}
	if err := driver.Migrate(context.Background(), mysql.New(mysql.Config{}), spec, rec, nil); err != nil {
		t.Fatal(err)
	}
	testdb.CompareDatabase(t, src, dst, "app")
	grants := func(s *testdb.Server) string {
		var out []string
		rows, err := s.DB(t).Query("SHOW GRANTS FOR 'appuser'@'%'")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var g string
			rows.Scan(&g)
			out = append(out, g)
		}
		return strings.Join(out, "\n")
	}
	if a, b := grants(src), grants(dst); a != b {
		t.Errorf("grants differ:\nsource %s\ntarget %s", a, b)
	}
	// The account works on the target with its own password.
	login, err := sql.Open("mysql", fmt.Sprintf("appuser:app-secret@tcp(%s:%d)/app", dst.Host, dst.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer login.Close()
	var n int
	if err := login.QueryRow("SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 2 {
		t.Errorf("appuser on the target: %d rows, %v", n, err)
	}
	var definer string
	dst.DB(t).QueryRow("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'names'").Scan(&definer)
	if definer != "appuser@%" {
		t.Errorf("view definer on the target = %q", definer)
	}
	if !readOnlyDuring {
		t.Error("the target was not read-only during the copy")
	}
	var readOnlyAfter bool
	dst.DB(t).QueryRow("SELECT @@GLOBAL.read_only").Scan(&readOnlyAfter)
	if readOnlyAfter {
		t.Error("read_only was not restored")
	}
}

type hookRecorder struct {
	recorder
	onStep func(string)
}

func (h *hookRecorder) StepStarted(id string) {
	h.recorder.StepStarted(id)
	h.onStep(id)
}

// The incremental phase rides out a restart of the target and then of the
// source while changes keep coming: it reconnects and resumes from its
// last applied group, and after Complete the target equals the source.
func TestIncrementalSurvivesServerRestarts(t *testing.T) {
	src := testdb.Start(t)
	dst := testdb.Start(t)
	src.Exec(t, "CREATE DATABASE rs", "CREATE TABLE rs.k (id INT PRIMARY KEY, n INT)",
		"INSERT INTO rs.k SELECT seq, 0 FROM rs.seq_1_to_5000",
		"CREATE TABLE rs.nokey (a INT, b VARCHAR(10))")
	// A writer that keeps trying while its server is down.
	stop := make(chan struct{})
	wrote := make(chan int, 1)
	go func() {
		db := src.DB(t)
		n := 0
		for {
			select {
			case <-stop:
				wrote <- n
				return
			default:
			}
			tx, err := db.Begin()
			if err == nil {
				_, err1 := tx.Exec("UPDATE rs.k SET n = n + 1 WHERE id = ?", n%5000+1)
				_, err2 := tx.Exec("INSERT INTO rs.nokey VALUES (?, 'x')", n%10)
				if err1 == nil && err2 == nil && tx.Commit() == nil {
					n++
				} else {
					tx.Rollback()
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	spec := fullSpec("dts-restarts", src, dst, "rs")
	spec.MigrateType = engine.MigrateFullAndIncremental
	spec.ConsistencyType = 2
	e := mysql.New(mysql.Config{RetryFor: 30 * time.Second, DialTimeout: time.Second})
	run := startCDC(t, e, spec)
	run.caughtUp(t)

	dst.Restart(t, time.Second)
	time.Sleep(time.Second)
	src.Restart(t, time.Second)
	time.Sleep(2 * time.Second)
	select {
	case err := <-run.result:
		t.Fatalf("the job ended after the restarts: %v", err)
	default:
	}
	close(stop)
	n := <-wrote
	run.finish(t)
	t.Logf("%d writer transactions", n)
	testdb.CompareDatabase(t, src, dst, "rs")
}
