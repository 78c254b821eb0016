package mysql_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// These tests build every failing setup for real on the shared MariaDB pair:
// wrong passwords, thin grants, a STATEMENT binlog, clashing tables. Each
// works in databases and accounts of its own; those that change a global
// setting restore it, and none runs in parallel.

func TestMain(m *testing.M) { testdb.Main(m) }

func endpoint(s *testdb.Server, user, password string) engine.Endpoint {
	return engine.Endpoint{DatabaseType: "mariadb", Host: s.Host, Port: s.Port, User: user, Password: password}
}

// shop creates a source database with two keyed tables and a view.
func shop(t *testing.T, src *testdb.Server) string {
	t.Helper()
	db := src.NewDatabase(t, "shop")
	src.Exec(t,
		"CREATE TABLE `"+db+"`.orders (id BIGINT PRIMARY KEY, note VARCHAR(40)) CHARSET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE TABLE `"+db+"`.items (sku VARCHAR(20) NOT NULL, qty INT, UNIQUE KEY (sku))",
		"CREATE VIEW `"+db+"`.big_orders AS SELECT id FROM `"+db+"`.orders WHERE id > 100",
	)
	return db
}

func rootSpec(src, dst *testdb.Server, db string) engine.Spec {
	return engine.Spec{
		JobID:         "dts-test",
		MigrateType:   engine.MigrateFullAndIncremental,
		MigrateObject: engine.MigrateObjectSelected,
		Objects:       []engine.ObjectSelection{{Database: db}},
		Source:        endpoint(src, "root", ""),
		Target:        endpoint(dst, "root", ""),
	}
}

// runCheck runs the check and verifies what every run must do: report
// progress up to the total, and return one item per step.
func runCheck(t *testing.T, e *mysql.Engine, spec engine.Spec) []engine.CheckItem {
	t.Helper()
	var mu sync.Mutex
	last, total := 0, 0
	items, err := e.Check(context.Background(), spec, func(done, n int) {
		mu.Lock()
		defer mu.Unlock()
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
	}
	return items
}

// find returns the item called name whose message contains all of the
// given words (to tell the two ConnectDBCheck items apart).
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

func dump(items []engine.CheckItem) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString("  " + it.Name + " " + it.Result + ": " + it.Message + "\n")
	}
	return b.String()
}

func TestGoodSetupPasses(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	other := src.NewDatabase(t, "ledger")
	src.Exec(t, "CREATE TABLE `"+other+"`.entries (id INT PRIMARY KEY)", "CREATE TABLE `"+other+"`.unused (x INT)")
	// An existing database on the target is fine while no table is in the way.
	dst.CreateDatabase(t, db)
	dst.Exec(t, "CREATE TABLE `"+db+"`.not_selected (id INT)")

	spec := rootSpec(src, dst, db)
	spec.Objects = append(spec.Objects, engine.ObjectSelection{Database: other, Tables: []string{"entries"}})
	spec.TargetReadOnly = true
	items := runCheck(t, mysql.New(mysql.Config{}), spec)

	want := []string{"ConnectDBCheck", "ConnectDBCheck", "VersionCheck", "SrcPrivilegeCheck", "DstPrivilegeCheck",
		"BinlogParamCheck", "SourceObjectsCheck", "DstEmptyCheck", "CharsetCheck", "LowerCaseTableNamesCheck",
		"PrimaryKeyCheck", "ReadOnlyPrivilegeCheck"}
	if len(items) != len(want) {
		t.Fatalf("got %d items, want %d:\n%s", len(items), len(want), dump(items))
	}
	for i, it := range items {
		if it.Name != want[i] {
			t.Errorf("item %d is %s, want %s", i, it.Name, want[i])
		}
		if it.Result != engine.ResultPass {
			t.Errorf("%s = %s: %s", it.Name, it.Result, it.Message)
		}
	}
	expect(t, find(t, items, "SourceObjectsCheck"), engine.ResultPass, "2 database(s), 4 table(s) and view(s)")
	expect(t, find(t, items, "VersionCheck"), engine.ResultPass, "MariaDB")
}

func TestWholeInstancePasses(t *testing.T) {
	src, dst := testdb.Shared(t)
	shop(t, src)
	spec := rootSpec(src, dst, "")
	spec.MigrateObject = engine.MigrateObjectWholeInstance
	spec.Objects = nil
	items := runCheck(t, mysql.New(mysql.Config{}), spec)
	for _, it := range items {
		if it.Result == engine.ResultFail {
			t.Errorf("%s failed: %s", it.Name, it.Message)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	user := dst.NewUser(t, "loader", "right-secret", "ALL ON *.*")
	spec := rootSpec(src, dst, db)
	spec.Target = endpoint(dst, user, "wrong-secret")
	items := runCheck(t, mysql.New(mysql.Config{}), spec)

	expect(t, find(t, items, "ConnectDBCheck", "source"), engine.ResultPass)
	expect(t, find(t, items, "ConnectDBCheck", "target"), engine.ResultFail, "access denied", user, "DstInfo.Password")
	expect(t, find(t, items, "DstPrivilegeCheck"), engine.ResultNotRun, "could not be reached", "target")
	expect(t, find(t, items, "DstEmptyCheck"), engine.ResultNotRun, "could not be reached", "target")
	// Source-only items still run.
	expect(t, find(t, items, "SrcPrivilegeCheck"), engine.ResultPass)
	expect(t, find(t, items, "BinlogParamCheck"), engine.ResultPass)
	for _, it := range items {
		if strings.Contains(it.Message+it.Advice, "secret") {
			t.Errorf("%s leaks a password: %s / %s", it.Name, it.Message, it.Advice)
		}
	}
}

func TestSourceWithoutReplicationPrivileges(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	thin := src.NewUser(t, "reader", "pw", "SELECT, SHOW VIEW, TRIGGER, EVENT ON `"+db+"`.*", "RELOAD ON *.*")
	spec := rootSpec(src, dst, db)
	spec.Source = endpoint(src, thin, "pw")
	items := runCheck(t, mysql.New(mysql.Config{}), spec)
	it := find(t, items, "SrcPrivilegeCheck")
	expect(t, it, engine.ResultFail, thin, "REPLICATION SLAVE", "REPLICATION CLIENT", "*.*")
	if !strings.Contains(it.Advice, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '"+thin+"'@'%'") {
		t.Errorf("advice does not give the GRANT: %s", it.Advice)
	}
	if strings.Contains(it.Message, "SELECT") {
		t.Errorf("database-level SELECT was not counted: %s", it.Message)
	}

	// MariaDB shows REPLICATION CLIENT as BINLOG MONITOR; it must count.
	full := src.NewUser(t, "replicator", "pw",
		"SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON `"+db+"`.*", "REPLICATION SLAVE, REPLICATION CLIENT ON *.*")
	spec.Source = endpoint(src, full, "pw")
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "SrcPrivilegeCheck"), engine.ResultPass, full)

	// Structure-only jobs do not read the binlog.
	spec.Source = endpoint(src, thin, "pw")
	spec.MigrateType = engine.MigrateStructure
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "SrcPrivilegeCheck"), engine.ResultPass)
	for _, it := range items {
		if it.Name == "BinlogParamCheck" || it.Name == "PrimaryKeyCheck" {
			t.Errorf("structure-only check ran %s", it.Name)
		}
	}
}

func TestTargetPrivileges(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	thin := dst.NewUser(t, "writer", "pw", "SELECT, INSERT, UPDATE, DELETE ON `"+db+"`.*")
	spec := rootSpec(src, dst, db)
	spec.Target = endpoint(dst, thin, "pw")
	spec.TargetReadOnly = true
	items := runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "DstPrivilegeCheck"), engine.ResultFail, thin, "CREATE", "ALTER", "DROP", "INDEX", "CREATE ROUTINE", "`"+db+"`.*")
	expect(t, find(t, items, "ReadOnlyPrivilegeCheck"), engine.ResultFail, "read_only", "READ_ONLY ADMIN")

	// Rights on the job's databases alone do not cover opendts's own.
	owner := dst.NewUser(t, "owner", "pw", "ALL ON `"+db+"`.*")
	spec.Target = endpoint(dst, owner, "pw")
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "DstPrivilegeCheck"), engine.ResultFail, "`__opendts`.*", "INSERT")

	admin := dst.NewUser(t, "admin", "pw", "ALL ON `"+db+"`.*", "ALL ON `__opendts`.*", "READ_ONLY ADMIN ON *.*")
	spec.Target = endpoint(dst, admin, "pw")
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "DstPrivilegeCheck"), engine.ResultPass)
	expect(t, find(t, items, "ReadOnlyPrivilegeCheck"), engine.ResultPass)

	// A whole instance also moves accounts.
	spec.MigrateObject = engine.MigrateObjectWholeInstance
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "DstPrivilegeCheck"), engine.ResultFail, "CREATE USER", "GRANT OPTION", "*.*")
}

func TestBinlogSettings(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	spec := rootSpec(src, dst, db)

	src.Exec(t, "SET GLOBAL binlog_format = 'STATEMENT'")
	t.Cleanup(func() { src.Exec(t, "SET GLOBAL binlog_format = 'ROW'") })
	items := runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "BinlogParamCheck"), engine.ResultFail, "binlog_format is STATEMENT")
	src.Exec(t, "SET GLOBAL binlog_format = 'ROW'")

	src.Exec(t, "SET GLOBAL binlog_row_image = 'MINIMAL'", "SET GLOBAL binlog_expire_logs_seconds = 3600")
	t.Cleanup(func() {
		src.Exec(t, "SET GLOBAL binlog_row_image = 'FULL'", "SET GLOBAL binlog_expire_logs_seconds = 0")
	})
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "BinlogParamCheck"), engine.ResultFail, "binlog_row_image is MINIMAL")
	src.Exec(t, "SET GLOBAL binlog_row_image = 'FULL'")

	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "BinlogParamCheck"), engine.ResultWarning, "1h0m0s")
}

func TestTargetConflict(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	dst.CreateDatabase(t, db)
	dst.Exec(t, "CREATE TABLE `"+db+"`.orders (id INT)", "CREATE TABLE `"+db+"`.unrelated (id INT)")
	items := runCheck(t, mysql.New(mysql.Config{}), rootSpec(src, dst, db))
	it := find(t, items, "DstEmptyCheck")
	expect(t, it, engine.ResultFail, "`"+db+"`.`orders` (base table)")
	if strings.Contains(it.Message, "unrelated") || strings.Contains(it.Message, "items") {
		t.Errorf("conflict names a table that does not clash: %s", it.Message)
	}
}

func TestMissingSourceObjects(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	spec := rootSpec(src, dst, db)
	spec.Objects = []engine.ObjectSelection{
		{Database: db, Tables: []string{"orders", "no_such_table"}},
		{Database: "no_such_database_x"},
	}
	items := runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "SourceObjectsCheck"), engine.ResultFail,
		"`"+db+"`.`no_such_table`", "`no_such_database_x`")

	spec.Objects = nil
	items = runCheck(t, mysql.New(mysql.Config{}), spec)
	expect(t, find(t, items, "SourceObjectsCheck"), engine.ResultFail, "no object is selected")
}

func TestTablesWithoutKey(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	src.Exec(t,
		"CREATE TABLE `"+db+"`.heap (a INT, b INT)",
		"CREATE TABLE `"+db+"`.nullable_unique (a INT NULL, UNIQUE KEY (a))",
	)
	items := runCheck(t, mysql.New(mysql.Config{}), rootSpec(src, dst, db))
	it := find(t, items, "PrimaryKeyCheck")
	expect(t, it, engine.ResultWarning, "`"+db+"`.`heap`", "`"+db+"`.`nullable_unique`", "2 of 4")
	if strings.Contains(it.Message, "items") || strings.Contains(it.Message, "big_orders") {
		t.Errorf("keyed table or view named: %s", it.Message)
	}
}

func TestNothingListens(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	spec := rootSpec(src, dst, db)
	spec.Source.Port = port
	start := time.Now()
	items := runCheck(t, mysql.New(mysql.Config{}), spec)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("check took %s against a closed port", d)
	}
	expect(t, find(t, items, "ConnectDBCheck", "source"), engine.ResultFail, "nothing listens", "connection refused")
	expect(t, find(t, items, "ConnectDBCheck", "target"), engine.ResultPass)
	for _, it := range items {
		if it.Name != "ConnectDBCheck" && it.Name != "DstPrivilegeCheck" && it.Name != "ReadOnlyPrivilegeCheck" {
			expect(t, it, engine.ResultNotRun, "source", "could not be reached")
		}
	}
}

// A server that accepts TCP but never speaks must not hold the check.
func TestSilentServer(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := shop(t, src)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	spec := rootSpec(src, dst, db)
	spec.Target.Port = l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	items := runCheck(t, mysql.New(mysql.Config{DialTimeout: 500 * time.Millisecond}), spec)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("check took %s against a silent server", d)
	}
	expect(t, find(t, items, "ConnectDBCheck", "target"), engine.ResultFail, "did not answer")
}

func TestCanceled(t *testing.T) {
	src, dst := testdb.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mysql.New(mysql.Config{}).Check(ctx, rootSpec(src, dst, "x"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check on a canceled context: %v", err)
	}
}
