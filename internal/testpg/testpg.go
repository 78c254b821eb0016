// Package testpg gives integration tests real PostgreSQL clusters:
// throw-away instances on loopback ports, each with its own data directory,
// started by scripts/pgtestdb.sh with wal_level=logical. It is imported by
// _test files and benchmarks' helpers only; production code never starts a
// database.
//
// Most tests share one source and one target per test binary (Shared) and
// isolate themselves with fresh databases (NewDatabase) and roles (NewRole).
// If PostgreSQL is not installed, the first test that needs it installs it
// with scripts/pgtestdb.sh install; if that is impossible the test fails,
// unless OPENDTS_SKIP_DB=1, in which case it is skipped.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/testenv"
)

// Server is one running cluster. The superuser postgres needs no password
// over loopback.
type Server struct {
	Host string
	Port int
	// Dir holds the cluster's data directory, socket and log.
	Dir     string
	options []string
}

var shared struct {
	once     sync.Once
	dir      string
	src, dst *Server
	err      error
}

// Shared returns the source and target clusters shared by every test in
// this binary, starting them on the first call.
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

// Stop stops the shared clusters, if started; TestMain calls it after
// m.Run (testdb.Main takes it as a cleanup).
func Stop() {
	var wg sync.WaitGroup
	for _, s := range []*Server{shared.src, shared.dst} {
		if s != nil {
			wg.Go(func() {
				if err := s.stop(); err != nil {
					fmt.Fprintln(os.Stderr, "testpg:", err)
				}
			})
		}
	}
	wg.Wait()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// Main runs the tests and then stops the shared clusters.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Start starts a cluster of the test's own, stopped when the test ends;
// options are postgres settings as "-c name=value" pairs.
func Start(t testing.TB, options ...string) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "opendts-testpg-")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := start(filepath.Join(dir, "server"), options...)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SuperURL is a connection URL for the superuser on database db.
func (s *Server) SuperURL(db string) string {
	return s.URL("postgres", "", db)
}

// URL is a connection URL for user with password on database db.
func (s *Server) URL(user, password, db string) string {
	u := "postgres://" + user
	if password != "" {
		u += ":" + password
	}
	if db == "" {
		db = "postgres"
	}
	return u + "@" + s.Addr() + "/" + db + "?sslmode=disable&connect_timeout=5"
}

// Conn opens a superuser connection to db, closed when the test ends.
func (s *Server) Conn(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), s.SuperURL(db))
	if err != nil {
		t.Fatalf("testpg: connect %s/%s: %v", s.Addr(), db, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs each statement as the superuser on db, failing the test on the
// first error.
func (s *Server) Exec(t testing.TB, db string, stmts ...string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), s.SuperURL(db))
	if err != nil {
		t.Fatalf("testpg: connect %s/%s: %v", s.Addr(), db, err)
	}
	defer c.Close(context.Background())
	for _, q := range stmts {
		if _, err := c.Exec(context.Background(), q); err != nil {
			t.Fatalf("testpg: %s/%s: %q: %v", s.Addr(), db, q, err)
		}
	}
}

// NewDatabase creates a database named prefix plus a unique suffix and
// drops it when the test ends.
func (s *Server) NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := UniqueName(prefix)
	s.CreateDatabase(t, name)
	return name
}

// CreateDatabase creates the database name and drops it when the test ends.
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	s.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { s.DropDatabase(name) })
}

// DropDatabase drops a database if it exists, ending its sessions.
func (s *Server) DropDatabase(name string) {
	c, err := pgx.Connect(context.Background(), s.SuperURL("postgres"))
	if err != nil {
		return
	}
	defer c.Close(context.Background())
	c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// NewRole creates a login role named prefix plus a unique suffix with
// password and the given attributes ("REPLICATION", "CREATEDB"), dropped
// when the test ends (with what it owns on the databases still there).
func (s *Server) NewRole(t testing.TB, prefix, password string, attrs ...string) string {
	t.Helper()
	name := UniqueName(prefix)
	s.Exec(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s",
		pgx.Identifier{name}.Sanitize(), strings.ReplaceAll(password, "'", "''"), strings.Join(attrs, " ")))
	t.Cleanup(func() { s.DropRole(name) })
	return name
}

// DropRole drops a role and what it owns in every database.
func (s *Server) DropRole(name string) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.SuperURL("postgres"))
	if err != nil {
		return
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn")
	if err != nil {
		return
	}
	dbs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, db := range dbs {
		if dc, err := pgx.Connect(ctx, s.SuperURL(db)); err == nil {
			dc.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{name}.Sanitize()+" CASCADE")
			dc.Close(ctx)
		}
	}
	c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
}

// Restart stops the cluster, waits down, and starts it again on the same
// port with the same data.
func (s *Server) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testpg: stop for a restart: %v", err)
	}
	time.Sleep(down)
	script, err := scriptPath()
	if err != nil {
		t.Fatal(err)
	}
	if err := runScript(2*time.Minute, script, append([]string{"start", s.Dir, strconv.Itoa(s.Port)}, s.options...)...); err != nil {
		t.Fatalf("testpg: start again after a restart: %v", err)
	}
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9_]+`)

// UniqueName is prefix (made safe and short) with a random suffix.
func UniqueName(prefix string) string {
	p := nameUnsafe.ReplaceAllString(strings.ToLower(prefix), "_")
	if len(p) > 24 {
		p = p[:24]
	}
	if p == "" {
		p = "t"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return p + "_" + hex.EncodeToString(b[:])
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("OPENDTS_SKIP_DB") == "1" {
		t.Skipf("testpg: no PostgreSQL (OPENDTS_SKIP_DB=1): %v", err)
	}
	t.Fatalf("testpg: no PostgreSQL (set OPENDTS_SKIP_DB=1 to skip): %v", err)
}

var install struct {
	once sync.Once
	err  error
}

func startPair() (src, dst *Server, dir string, err error) {
	dir, err = os.MkdirTemp("", "opendts-testpg-")
	if err != nil {
		return nil, nil, "", fmt.Errorf("temp dir: %w", err)
	}
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { src, srcErr = start(filepath.Join(dir, "source")) })
	wg.Go(func() { dst, dstErr = start(filepath.Join(dir, "target")) })
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

func start(dir string, options ...string) (*Server, error) {
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
		if err := runScript(2*time.Minute, script, append([]string{"start", dir, strconv.Itoa(port)}, options...)...); err != nil {
			runScript(time.Minute, script, "stop", dir)
			lastErr = err
			continue
		}
		return &Server{Host: "127.0.0.1", Port: port, Dir: dir, options: options}, nil
	}
	return nil, lastErr
}

func (s *Server) stop() error {
	script, err := scriptPath()
	if err != nil {
		return err
	}
	return runScript(time.Minute, script, "stop", s.Dir)
}

// BinDir is the installed PostgreSQL's bin directory (pg_dump, psql...).
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best := ""
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil && versionOf(d) > versionOf(best) {
			best = d
		}
	}
	return best
}

func versionOf(dir string) int {
	if dir == "" {
		return 0
	}
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func ensureInstalled() error {
	if BinDir() != "" {
		return nil
	}
	if os.Getenv("OPENDTS_SKIP_DB") == "1" {
		return errors.New("postgres is not installed")
	}
	script, err := scriptPath()
	if err != nil {
		return err
	}
	if err := runScript(15*time.Minute, script, "install"); err != nil {
		return fmt.Errorf("install PostgreSQL: %w", err)
	}
	if BinDir() == "" {
		return errors.New("postgres still missing after scripts/pgtestdb.sh install")
	}
	return nil
}

// The harness helpers every family's harness shares (internal/testenv).
var (
	runScript = testenv.RunScript
	freePort  = testenv.FreePort
)

func scriptPath() (string, error) { return testenv.Script("pgtestdb.sh") }
