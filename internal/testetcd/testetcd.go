// Package testetcd gives tests real etcd clusters: N members of Debian's
// etcd-server (3.4) on loopback ports, each with its own data directory,
// started by scripts/etcdtestdb.sh. It is imported by _test files (and
// benchmarks) only; production code never starts etcd.
//
// Most tests share one 3-member cluster per test binary (Shared) and keep
// apart by a key prefix of their own (Prefix). A test that kills members
// starts a cluster of its own (Start), stopped when it ends.
//
// If etcd is not installed, the first test that needs it installs it with
// scripts/etcdtestdb.sh install. If that is impossible the test fails,
// unless OPENDTS_SKIP_DB=1, in which case it is skipped.
package testetcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendts/opendts/internal/testenv"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	// Dir holds a directory per member (m0, m1, ...: data, etcd.pid,
	// etcd.log) and the cluster's files (members, endpoints).
	Dir       string
	endpoints []string
	// ownDir: Close removes Dir (a temporary directory of New's).
	ownDir bool
	closed sync.Once
}

// The shared cluster lives as long as the test binary; Main (or
// StopShared) stops it.
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the 3-member cluster shared by every test in this binary,
// starting it on the first call.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = New(3) })
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.c
}

// StopShared stops the shared cluster if one was started. Pass it to
// testdb.Main as a cleanup in a binary that uses both.
func StopShared() {
	if shared.c != nil {
		if err := shared.c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "testetcd:", err)
		}
	}
}

// Main runs the tests and then stops the shared cluster. Call it from
// TestMain: func TestMain(m *testing.M) { testetcd.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// Start starts a cluster of the test's own with members members, stopped
// and removed when the test ends.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	c, err := New(members)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("testetcd: %v", err)
		}
	})
	return c
}

// New starts a cluster of members members in a temporary directory and
// returns once a linearizable read succeeds. The caller must Close it
// (for TestMain and benchmarks; tests use Start or Shared). The members
// also stop by themselves once this process is gone.
func New(members int) (*Cluster, error) {
	if members < 1 {
		return nil, errors.New("testetcd: a cluster needs at least one member")
	}
	if err := ensureInstalled(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "opendts-testetcd-")
	if err != nil {
		return nil, fmt.Errorf("testetcd: %w", err)
	}
	// The script picks the ports, below the kernel's ephemeral range
	// (where an outgoing connection's local port could take one before
	// etcd binds it), and tries other ports when a bind fails anyway.
	cdir := filepath.Join(dir, "cluster")
	if err := runScript(2*time.Minute, "start", cdir, strconv.Itoa(members)); err != nil {
		runScript(time.Minute, "stop", cdir)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testetcd: start a %d-member cluster: %w", members, err)
	}
	b, err := os.ReadFile(filepath.Join(cdir, "endpoints"))
	if err != nil {
		runScript(time.Minute, "stop", cdir)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testetcd: %w", err)
	}
	c := &Cluster{Dir: cdir, endpoints: strings.Split(strings.TrimSpace(string(b)), ","), ownDir: true}
	// The script waited for a linearizable read through etcdctl; check
	// with the client the code under test uses too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Endpoints are the members' client URLs (http://127.0.0.1:port), in
// member order.
func (c *Cluster) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// Members is the number of members.
func (c *Cluster) Members() int { return len(c.endpoints) }

// Client returns a client of every member, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("testetcd: client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Kill ends member i (0-based) with SIGKILL, as a crash would, and waits
// until it is gone.
func (c *Cluster) Kill(i int) error {
	if err := c.check(i); err != nil {
		return err
	}
	if err := runScript(time.Minute, "kill", c.Dir, strconv.Itoa(i)); err != nil {
		return fmt.Errorf("testetcd: kill member %d: %w", i, err)
	}
	return nil
}

// Restart starts member i again on its data directory and ports
// (--initial-cluster-state existing) and returns once it listens. It does
// not wait for the cluster to be healthy (a member restarted while the
// majority is down cannot be): WaitHealthy does.
func (c *Cluster) Restart(i int) error {
	if err := c.check(i); err != nil {
		return err
	}
	if err := runScript(time.Minute, "restart", c.Dir, strconv.Itoa(i)); err != nil {
		return fmt.Errorf("testetcd: restart member %d: %w", i, err)
	}
	return nil
}

// WaitHealthy waits until a linearizable read through every endpoint
// succeeds (each member that is up has a leader and the cluster a
// majority), or ctx ends; the error then carries the members' log tails.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		last = c.readEach(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testetcd: cluster at %s not healthy: %w\n%s", strings.Join(c.endpoints, ","), last, c.LogTails(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readEach does a linearizable read through each running member.
func (c *Cluster) readEach(ctx context.Context) error {
	for i, ep := range c.endpoints {
		if !c.running(i) {
			continue
		}
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = cl.Get(rctx, "opendts-health", clientv3.WithCountOnly())
		cancel()
		cl.Close()
		if err != nil {
			return fmt.Errorf("member %d (%s): %w", i, ep, err)
		}
	}
	return nil
}

// running reports whether member i's process is alive.
func (c *Cluster) running(i int) bool {
	b, err := os.ReadFile(filepath.Join(c.Dir, "m"+strconv.Itoa(i), "etcd.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	// /proc/PID exists while the process does (a zombie of a killed
	// member is reaped by init: the script's setsid detached it).
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state after the command's closing parenthesis: Z is a zombie.
	s := string(st)
	if k := strings.LastIndexByte(s, ')'); k >= 0 && k+2 < len(s) {
		return s[k+2] != 'Z'
	}
	return true
}

// LogTail is the last n lines of member i's log.
func (c *Cluster) LogTail(i, n int) string {
	b, err := os.ReadFile(filepath.Join(c.Dir, "m"+strconv.Itoa(i), "etcd.log"))
	if err != nil {
		return fmt.Sprintf("(member %d has no log: %v)", i, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogTails is LogTail of every member, each under a heading.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for i := range c.endpoints {
		fmt.Fprintf(&b, "--- member %d (%s), last lines of its log:\n%s\n", i, filepath.Join(c.Dir, "m"+strconv.Itoa(i), "etcd.log"), c.LogTail(i, n))
	}
	return b.String()
}

// Close stops every member and removes the cluster's directory.
func (c *Cluster) Close() error {
	var err error
	c.closed.Do(func() {
		err = runScript(time.Minute, "stop", c.Dir)
		if c.ownDir {
			os.RemoveAll(filepath.Dir(c.Dir))
		}
	})
	return err
}

func (c *Cluster) check(i int) error {
	if i < 0 || i >= len(c.endpoints) {
		return fmt.Errorf("testetcd: no member %d in a %d-member cluster", i, len(c.endpoints))
	}
	return nil
}

// Prefix is a key prefix no other test uses ("/t-<hex>/"), for tests that
// share a cluster.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "/t-" + hex.EncodeToString(b[:]) + "/"
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("OPENDTS_SKIP_DB") == "1" {
		t.Skipf("testetcd: no etcd cluster (OPENDTS_SKIP_DB=1): %v", err)
	}
	t.Fatalf("testetcd: no etcd cluster (set OPENDTS_SKIP_DB=1 to skip): %v", err)
}

var install struct {
	once sync.Once
	err  error
}

func ensureInstalled() error {
	install.once.Do(func() {
		if installed() {
			return
		}
		if os.Getenv("OPENDTS_SKIP_DB") == "1" {
			install.err = errors.New("etcd is not installed")
			return
		}
		if err := runScript(15*time.Minute, "install"); err != nil {
			install.err = fmt.Errorf("install etcd: %w", err)
			return
		}
		if !installed() {
			install.err = errors.New("etcd still missing after scripts/etcdtestdb.sh install")
		}
	})
	return install.err
}

func installed() bool {
	_, err := exec.LookPath("etcd")
	return err == nil
}

// runScript runs scripts/etcdtestdb.sh (see internal/testenv).
func runScript(timeout time.Duration, args ...string) error {
	script, err := testenv.Script("etcdtestdb.sh")
	if err != nil {
		return err
	}
	return testenv.RunScript(timeout, script, args...)
}
