// Package testredis gives integration tests real Redis servers: throw-away
// standalone instances and 3-master clusters on loopback ports, each with
// its own directory, started by scripts/redistestdb.sh. It is imported by
// _test files only; production code never starts a server.
//
// Redis starts in a few milliseconds, so every test starts its own servers
// (Start, StartCluster) and they stop when the test ends. If redis-server
// is missing, the first test installs it with the script; if that is
// impossible the test fails, unless OPENDTS_SKIP_DB=1, which skips it.
package testredis

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/testenv"
)

// Server is one running redis-server.
type Server struct {
	Host string
	Port int
	// Password is the default user's password ("" for none).
	Password string
	Dir      string
	args     []string
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Cluster is three masters, slots split evenly, no replicas.
type Cluster struct {
	Nodes    []*Server
	Password string
	Dir      string
}

// Addrs lists the masters' addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

var install struct {
	once sync.Once
	err  error
}

// Start starts a standalone server, stopped when the test ends; args go
// to redis-server as they are ("--requirepass", "pw", ...).
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	dir := tempDir(t)
	s, err := startServer(dir, args)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// StartCluster starts a 3-master cluster, stopped when the test ends.
func StartCluster(t testing.TB, args ...string) *Cluster {
	t.Helper()
	if err := ensureInstalled(); err != nil {
		unavailable(t, err)
	}
	dir := tempDir(t)
	var ports []string
	var nodes []*Server
	for range 3 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, strconv.Itoa(p))
	}
	c := &Cluster{Dir: dir, Password: password(args)}
	t.Cleanup(func() { runScript(time.Minute, "stop", dir) })
	if err := runScript(2*time.Minute, append([]string{"cluster", dir, ports[0], ports[1], ports[2]}, args...)...); err != nil {
		unavailable(t, err)
	}
	for _, p := range ports {
		port, _ := strconv.Atoi(p)
		nodes = append(nodes, &Server{Host: "127.0.0.1", Port: port, Password: c.Password, Dir: filepath.Join(dir, p),
			args: append([]string{"--cluster-enabled", "yes"}, args...)})
	}
	c.Nodes = nodes
	return c
}

// Client is a go-redis client on the cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: c.Password})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Client is a go-redis client on database db, closed when the test ends.
func (s *Server) Client(t testing.TB, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password, DB: db, ReadTimeout: time.Minute})
	t.Cleanup(func() { c.Close() })
	return c
}

// Do runs one command on database 0 and fails the test on an error.
func (s *Server) Do(t testing.TB, args ...any) any {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password, ReadTimeout: time.Minute})
	defer c.Close()
	v, err := c.Do(context.Background(), args...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("testredis: %s %v: %v", s.Addr(), args[0], err)
	}
	return v
}

// Stop stops the server (its data dies with it unless it saved).
func (s *Server) Stop() error { return runScript(time.Minute, "stop", s.Dir) }

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
		p.Wait()
	}
}

// Restart stops the server, waits down, and starts it again on the same
// port and directory with the same arguments.
func (s *Server) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(down)
	if err := runScript(time.Minute, append([]string{"start", s.Dir, strconv.Itoa(s.Port)}, s.args...)...); err != nil {
		t.Fatal(err)
	}
}

func startServer(dir string, args []string) (*Server, error) {
	if err := ensureInstalled(); err != nil {
		return nil, err
	}
	var last error
	for range 2 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := runScript(time.Minute, append([]string{"start", dir, strconv.Itoa(port)}, args...)...); err != nil {
			runScript(time.Minute, "stop", dir)
			last = err
			continue
		}
		return &Server{Host: "127.0.0.1", Port: port, Password: password(args), Dir: dir, args: args}, nil
	}
	return nil, last
}

func password(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--requirepass" {
			return args[i+1]
		}
	}
	return ""
}

func tempDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "opendts-testredis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("OPENDTS_SKIP_DB") == "1" {
		t.Skipf("testredis: no Redis server (OPENDTS_SKIP_DB=1): %v", err)
	}
	t.Fatalf("testredis: no Redis server (set OPENDTS_SKIP_DB=1 to skip): %v", err)
}

func ensureInstalled() error {
	install.once.Do(func() {
		if _, err := exec.LookPath("redis-server"); err == nil {
			if _, err := exec.LookPath("redis-cli"); err == nil {
				return
			}
		}
		if os.Getenv("OPENDTS_SKIP_DB") == "1" {
			install.err = errors.New("redis-server is not installed")
			return
		}
		install.err = runScript(15*time.Minute, "install")
	})
	return install.err
}

// runScript runs scripts/redistestdb.sh (see internal/testenv).
func runScript(timeout time.Duration, args ...string) error {
	script, err := testenv.Script("redistestdb.sh")
	if err != nil {
		return err
	}
	return testenv.RunScript(timeout, script, args...)
}

func freePort() (int, error) {
	// Cluster nodes also bind port+10000 for the bus: pick ports whose
	// bus port is free too.
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p+10000 > 65535 {
			continue
		}
		if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			b.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free port pair for a cluster node")
}
