package testetcd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/testetcd"
)

func TestMain(m *testing.M) { testetcd.Main(m) }

func TestShared(t *testing.T) {
	c := testetcd.Shared(t)
	if got := len(c.Endpoints()); got != 3 {
		t.Fatalf("shared cluster has %d endpoints, want 3", got)
	}
	if testetcd.Shared(t) != c {
		t.Error("Shared started a second cluster")
	}
	p1, p2 := testetcd.Prefix(t), testetcd.Prefix(t)
	if p1 == p2 || !strings.HasPrefix(p1, "/t-") || !strings.HasSuffix(p1, "/") {
		t.Errorf("prefixes %q and %q", p1, p2)
	}
	cl := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, p1+"k", "v"); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Get(ctx, p1+"k")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
		t.Fatalf("get after put: %v %v", r, err)
	}
	// Three members, all voting.
	ml, err := cl.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Errorf("%d members, want 3", len(ml.Members))
	}
}

// TestKillRestart: one member down leaves a majority; two down leave none,
// and a linearizable read fails instead of answering; both back, the data
// is there.
func TestKillRestart(t *testing.T) {
	c := testetcd.Start(t, 3)
	cl := c.Client(t)
	ctx := context.Background()
	put := func(k, v string) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cl.Put(pctx, k, v)
		return err
	}
	if err := put("/a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	// The leader may have been member 0: give the election its time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := put("/b", "2")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("one member of three down, writes still fail: %v\n%s", err, c.LogTails(10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	start := time.Now()
	_, err := cl.Get(gctx, "/a")
	cancel()
	if err == nil {
		t.Fatal("two members of three down, a linearizable read succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the failed read took %v", d)
	}
	for _, i := range []int{0, 1} {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(wctx); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Get(wctx, "/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 2 {
		t.Errorf("after the restarts: %d keys, want 2", len(r.Kvs))
	}
	if tail := c.LogTail(0, 5); !strings.Contains(tail, "{") {
		t.Errorf("member 0's log tail looks empty: %q", tail)
	}
	if err := c.Kill(7); err == nil {
		t.Error("Kill(7) of a 3-member cluster did not fail")
	}
}
