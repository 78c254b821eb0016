// Package testdb gives integration tests real MariaDB servers: throw-away
// instances on loopback ports, each with its own data directory, started by
// scripts/testdb.sh. It is imported by _test files only; production code
// never starts a database.
//
// Most tests share one source and one target per test binary (Shared), and
// isolate themselves with a fresh database (NewDatabase) and fresh accounts
// (NewUser). A test that changes a global setting of a shared server must
// restore it before it returns, and must not run in parallel with others.
//
// If MariaDB is not installed, the first test that needs it installs it with
// scripts/testdb.sh install. If that is impossible the test fails, unless
// OPENDTS_SKIP_DB=1, in which case the tests that need a server are skipped.
package testdb

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/testenv"
)

// Server is one running MariaDB instance. Root has no password and reaches
// it over TCP only.
type Server struct {
	Host     string
	Port     int
	ServerID int
	// Dir holds the server's datadir, socket, pid file and logs.
	Dir string
	// options are the test's own mariadbd settings, kept across restarts.
	options []string

	rootOnce sync.Once
	root     *sql.DB
	rootErr  error
}

// The shared pair lives as long as the test binary; Main stops it.
var shared struct {
	once     sync.Once
	dir      string
	src, dst *Server
	err      error
}

// Shared returns the source and target servers shared by every test in this
// binary, starting them on the first call.
func Shared(t testing.TB) (src, dst *Server) {
	t.Helper()
	shared.once.Do(func() {
		shared.src, shared.dst, shared.dir, shared.err = startPair()
	})
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.src, shared.dst
}

// Main runs the tests and then stops the shared servers. Call it from
// TestMain: func TestMain(m *testing.M) { testdb.Main(m) }.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	var wg sync.WaitGroup
	for _, s := range []*Server{shared.src, shared.dst} {
		if s != nil {
			wg.Go(func() {
				if err := s.stop(); err != nil {
					fmt.Fprintln(os.Stderr, "testdb:", err)
				}
			})
		}
	}
	wg.Wait()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	// A package's own leftovers (a built binary, say) go too, whether its
	// tests passed or failed.
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// Start starts a server of the test's own, stopped when the test ends, for
// tests that change settings which others would notice.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t)
}

// StartWith is Start with settings of the test's own, given to mariadbd as
// command-line options (such as "--lower-case-table-names=1").
func StartWith(t testing.TB, options ...string) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "opendts-testdb-")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := start(filepath.Join(dir, "server"), 3, options...)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testdb: %v", err)
		}
	})
	return s
}

// RootDSN is a go-sql-driver DSN for root on database db ("" for none).
func (s *Server) RootDSN(db string) string {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	cfg.DBName = db
	cfg.Timeout = 5 * time.Second
	cfg.Loc = time.UTC
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// DB opens a connection pool as root, closed when the test ends.
func (s *Server) DB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", s.RootDSN(""))
	if err != nil {
		t.Fatalf("testdb: open %s: %v", s.addr(), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs each statement as root, failing the test on the first error.
func (s *Server) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	db, err := s.rootDB()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("testdb: %s: %q: %v", s.addr(), q, err)
		}
	}
}

// NewDatabase creates a database with a unique name starting with prefix and
// drops it when the test ends. It returns the name.
func (s *Server) NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	s.CreateDatabase(t, name)
	return name
}

// CreateDatabase creates the database name, which the test chose (to clash
// with one on the other server, say), and drops it when the test ends.
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	quoted := "`" + strings.ReplaceAll(name, "`", "``") + "`"
	s.Exec(t, "CREATE DATABASE "+quoted)
	t.Cleanup(func() {
		if db, err := s.rootDB(); err == nil {
			db.Exec("DROP DATABASE IF EXISTS " + quoted)
		}
	})
}

// NewUser creates the account 'name'@'%' with a unique name starting with
// prefix, identified by password, and grants it each of grants, written as
// the part of a GRANT statement before TO ("SELECT, RELOAD ON *.*"). The
// account is dropped when the test ends. It returns the user name.
func (s *Server) NewUser(t testing.TB, prefix, password string, grants ...string) string {
	t.Helper()
	name := uniqueName(prefix)
	db, err := s.rootDB()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	// CREATE USER takes no placeholders; name is safe by construction and
	// the password is quoted.
	if _, err := db.Exec("CREATE USER '" + name + "'@'%' IDENTIFIED BY " + quote(password)); err != nil {
		t.Fatalf("testdb: create user %s: %v", name, err)
	}
	t.Cleanup(func() { db.Exec("DROP USER IF EXISTS '" + name + "'@'%'") })
	for _, g := range grants {
		s.Exec(t, "GRANT "+g+" TO '"+name+"'@'%'")
	}
	return name
}

// quote makes a MariaDB string literal of v.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(v) + "'"
}

func (s *Server) addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// rootDB is the helper's own pool, kept for the server's life so that Exec
// and cleanups do not open a connection each.
func (s *Server) rootDB() (*sql.DB, error) {
	s.rootOnce.Do(func() {
		s.root, s.rootErr = sql.Open("mysql", s.RootDSN(""))
		if s.rootErr == nil {
			s.root.SetMaxIdleConns(4)
		}
	})
	return s.root, s.rootErr
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9_]+`)

// uniqueName keeps names short (MySQL identifiers and user names have
// limits) and safe to splice into SQL between backquotes or quotes.
func uniqueName(prefix string) string {
	p := nameUnsafe.ReplaceAllString(strings.ToLower(prefix), "_")
	if len(p) > 24 {
		p = p[:24]
	}
	if p == "" {
		p = "t"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return p + "_" + hex.EncodeToString(b[:])
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("OPENDTS_SKIP_DB") == "1" {
		t.Skipf("testdb: no MariaDB server (OPENDTS_SKIP_DB=1): %v", err)
	}
	t.Fatalf("testdb: no MariaDB server (set OPENDTS_SKIP_DB=1 to skip): %v", err)
}

// errNotInstalled is returned, with OPENDTS_SKIP_DB=1, instead of installing.
var errNotInstalled = errors.New("mariadbd is not installed")

var install struct {
	once sync.Once
	err  error
}

// startPair starts the shared source and target side by side: start-up is
// mostly waiting, and two waits in parallel halve it.
func startPair() (src, dst *Server, dir string, err error) {
	dir, err = os.MkdirTemp("", "opendts-testdb-")
	if err != nil {
		return nil, nil, "", fmt.Errorf("temp dir: %w", err)
	}
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { src, srcErr = start(filepath.Join(dir, "source"), 1) })
	wg.Go(func() { dst, dstErr = start(filepath.Join(dir, "target"), 2) })
	wg.Wait()
	if err := errors.Join(srcErr, dstErr); err != nil {
		for _, s := range []*Server{src, dst} {
			if s != nil {
				s.stop()
			}
		}
		os.RemoveAll(dir)
		return nil, nil, "", err
	}
	return src, dst, dir, nil
}

// start installs MariaDB if needed and starts a server in dir. A port taken
// between picking and binding is retried once with another.
func start(dir string, serverID int, options ...string) (*Server, error) {
	install.once.Do(func() { install.err = ensureInstalled() })
	if install.err != nil {
		return nil, install.err
	}
	script, err := scriptPath()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := runScript(2*time.Minute, script, append([]string{"start", dir, strconv.Itoa(port), strconv.Itoa(serverID)}, options...)...); err != nil {
			// The script stops what it started when it fails, but a
			// timeout kills it mid-way: make sure no server outlives us.
			runScript(time.Minute, script, "stop", dir)
			lastErr = err
			continue
		}
		return &Server{Host: "127.0.0.1", Port: port, ServerID: serverID, Dir: dir, options: options}, nil
	}
	return nil, lastErr
}

// Restart stops the server, waits down, and starts it again on the same
// port with the same data, as a DBA's restart would. Connections of the
// code under test break; it must reconnect.
func (s *Server) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	script, err := scriptPath()
	if err != nil {
		t.Fatal(err)
	}
	// The root pool stays: its connections reconnect.
	if err := runScript(time.Minute, script, "stop", s.Dir); err != nil {
		t.Fatalf("testdb: stop for a restart: %v", err)
	}
	time.Sleep(down)
	if err := runScript(2*time.Minute, script, append([]string{"start", s.Dir, strconv.Itoa(s.Port), strconv.Itoa(s.ServerID)}, s.options...)...); err != nil {
		t.Fatalf("testdb: start again after a restart: %v", err)
	}
}

func (s *Server) stop() error {
	if s.root != nil {
		s.root.Close()
	}
	script, err := scriptPath()
	if err != nil {
		return err
	}
	return runScript(time.Minute, script, "stop", s.Dir)
}

func ensureInstalled() error {
	if installed() {
		return nil
	}
	if os.Getenv("OPENDTS_SKIP_DB") == "1" {
		return errNotInstalled
	}
	script, err := scriptPath()
	if err != nil {
		return err
	}
	if err := runScript(15*time.Minute, script, "install"); err != nil {
		return fmt.Errorf("install MariaDB: %w", err)
	}
	if !installed() {
		return errors.New("mariadbd still missing after scripts/testdb.sh install")
	}
	return nil
}

func installed() bool {
	if _, err := exec.LookPath("mariadbd"); err == nil {
		return true
	}
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/local/sbin/mariadbd", "/usr/local/bin/mariadbd"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// The harness helpers every family's harness shares (internal/testenv).
var (
	runScript = testenv.RunScript
	freePort  = testenv.FreePort
)

func scriptPath() (string, error) { return testenv.Script("testdb.sh") }
