package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/testetcd"
)

// fakeJobs is a job service that only records what the node asks of it.
type fakeJobs struct {
	mu      sync.Mutex
	active  map[string]bool
	adopted map[string][]jobs.Claim
	// abandoned counts Abandon calls.
	abandoned int
}

func newFakeJobs(ids ...string) *fakeJobs {
	f := &fakeJobs{active: map[string]bool{}, adopted: map[string][]jobs.Claim{}}
	for _, id := range ids {
		f.active[id] = true
	}
	return f
}

func (f *fakeJobs) ActiveJobs(context.Context) ([]*jobs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*jobs.Job
	for id, on := range f.active {
		if on {
			out = append(out, &jobs.Job{ID: id})
		}
	}
	return out, nil
}

func (f *fakeJobs) Adopt(_ context.Context, id string, c jobs.Claim) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adopted[id] = append(f.adopted[id], c)
	return true, nil
}

func (f *fakeJobs) Changed(context.Context, string) {}

// HasRun says yes for every job adopted here and still active: the fake
// runs until the test makes the job inactive.
func (f *fakeJobs) HasRun(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.adopted[id]) > 0 && f.active[id]
}

func (f *fakeJobs) Abandon() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandoned++
	return 0
}

func (f *fakeJobs) claims(id string) []jobs.Claim {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jobs.Claim(nil), f.adopted[id]...)
}

func joinNode(t *testing.T, c *clientv3.Client, keys Keys, name string, maxJobs int, js Jobs) *Node {
	t.Helper()
	n := registerNode(t, c, keys, name, maxJobs)
	n.Start(js)
	return n
}

// registerNode joins a node without starting its work.
func registerNode(t *testing.T, c *clientv3.Client, keys Keys, name string, maxJobs int) *Node {
	t.Helper()
	n, err := Join(context.Background(), NodeConfig{Client: c, Keys: keys, Name: name, Address: "127.0.0.1:1", LeaseTTL: 2 * time.Second, MaxJobs: maxJobs, ClaimDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every active job gets exactly one owner among the nodes; jobs spread
// over them; the owner is known to every node.
func TestNodesClaimEachJobOnce(t *testing.T) {
	etcd := testetcd.Shared(t)
	c := etcd.Client(t)
	keys := NewKeys(testetcd.Prefix(t))
	ids := []string{"dts-a", "dts-b", "dts-c", "dts-d", "dts-e", "dts-f"}
	fa, fb := newFakeJobs(ids...), newFakeJobs(ids...)
	// Both registered before either claims: otherwise the first takes
	// every job before it sees the second.
	a, b := registerNode(t, c, keys, "a", 0), registerNode(t, c, keys, "b", 0)
	a.Start(fa)
	b.Start(fb)
	waitFor(t, "every job owned", 10*time.Second, func() bool {
		for _, id := range ids {
			if a.Owner(id) == "" || b.Owner(id) == "" {
				return false
			}
		}
		return true
	})
	perNode := map[string]int{}
	for _, id := range ids {
		if n := len(fa.claims(id)) + len(fb.claims(id)); n != 1 {
			t.Errorf("job %s adopted %d times", id, n)
		}
		if a.Owner(id) != b.Owner(id) {
			t.Errorf("job %s: node a sees owner %q, node b %q", id, a.Owner(id), b.Owner(id))
		}
		perNode[a.Owner(id)]++
	}
	if perNode["a"] == 0 || perNode["b"] == 0 {
		t.Errorf("jobs not spread over the nodes: %v", perNode)
	}
	if got := len(a.Nodes()); got != 2 {
		t.Errorf("node a sees %d nodes, want 2", got)
	}
}

// A node that leaves hands its jobs over at once (its lease is revoked);
// the new claims have larger epochs.
func TestNodeLeavingHandsJobsOver(t *testing.T) {
	etcd := testetcd.Shared(t)
	c := etcd.Client(t)
	keys := NewKeys(testetcd.Prefix(t))
	fa := newFakeJobs("dts-1")
	a := joinNode(t, c, keys, "a", 0, fa)
	waitFor(t, "a owns the job", 5*time.Second, func() bool { return a.Owner("dts-1") == "a" })
	fb := newFakeJobs("dts-1")
	b := joinNode(t, c, keys, "b", 0, fb)
	start := time.Now()
	a.Close()
	waitFor(t, "b owns the job", 5*time.Second, func() bool { return b.Owner("dts-1") == "b" && len(fb.claims("dts-1")) == 1 })
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("handover took %s, want well under the 2 s TTL", took)
	}
	if before, after := fa.claims("dts-1")[0].Epoch, fb.claims("dts-1")[0].Epoch; after <= before {
		t.Errorf("new epoch %d is not larger than the old %d", after, before)
	}
}

// A node whose lease is lost (here revoked behind its back, as an expiry
// after a pause would) abandons its runs and registers again; another
// node owns the job with a newer epoch.
func TestNodeLosingItsLeaseAbandonsItsJobs(t *testing.T) {
	etcd := testetcd.Shared(t)
	c := etcd.Client(t)
	keys := NewKeys(testetcd.Prefix(t))
	fa := newFakeJobs("dts-1")
	a := joinNode(t, c, keys, "a", 0, fa)
	waitFor(t, "a owns the job", 5*time.Second, func() bool { return a.Owner("dts-1") == "a" })
	fb := newFakeJobs("dts-1")
	b := joinNode(t, c, keys, "b", 0, fb)
	a.mu.Lock()
	lease := a.session.Lease()
	a.mu.Unlock()
	// a's service no longer lists the job (its run is being abandoned),
	// so b is the one to take it.
	fa.mu.Lock()
	fa.active["dts-1"] = false
	fa.mu.Unlock()
	if _, err := c.Revoke(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a abandons its jobs", 5*time.Second, func() bool {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		return fa.abandoned == 1
	})
	waitFor(t, "b owns the job", 5*time.Second, func() bool { return b.Owner("dts-1") == "b" })
	waitFor(t, "a registered again", 5*time.Second, func() bool { return len(b.Nodes()) == 2 })
	if cl := fb.claims("dts-1"); len(cl) != 1 || cl[0].Epoch <= fa.claims("dts-1")[0].Epoch {
		t.Errorf("b's claims %v, a's %v: want one newer claim", cl, fa.claims("dts-1"))
	}
}

// MaxJobs caps a node; the least-loaded node takes new work.
func TestMaxJobsAndLeastLoaded(t *testing.T) {
	etcd := testetcd.Shared(t)
	c := etcd.Client(t)
	keys := NewKeys(testetcd.Prefix(t))
	ids := []string{"dts-1", "dts-2", "dts-3"}
	fa := newFakeJobs(ids...)
	a := joinNode(t, c, keys, "a", 1, fa)
	waitFor(t, "a owns one job", 5*time.Second, func() bool { return a.Owned() == 1 })
	time.Sleep(1500 * time.Millisecond)
	if a.Owned() != 1 {
		t.Fatalf("a owns %d jobs with -max-jobs 1", a.Owned())
	}
	fb := newFakeJobs(ids...)
	b := joinNode(t, c, keys, "b", 0, fb)
	waitFor(t, "b owns the other two", 5*time.Second, func() bool { return b.Owned() == 2 })
	// A new job goes to the least-loaded node with room: b has 2, a is
	// full, so b; with a third node c (no jobs), c.
	fc := newFakeJobs(append(ids, "dts-4")...)
	cn := joinNode(t, c, keys, "c", 0, fc)
	waitFor(t, "c sees the others", 5*time.Second, func() bool { return len(cn.Nodes()) == 3 })
	for _, f := range []*fakeJobs{fa, fb} {
		f.mu.Lock()
		f.active["dts-4"] = true
		f.mu.Unlock()
	}
	cn.Wake()
	waitFor(t, "dts-4 owned", 5*time.Second, func() bool { return cn.Owner("dts-4") != "" })
	if got := cn.Owner("dts-4"); got != "c" {
		t.Errorf("dts-4 went to %q, want the least-loaded node c", got)
	}
}
