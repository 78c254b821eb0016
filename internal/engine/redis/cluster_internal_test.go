package redis

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/testredis"
)

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{"123456789": 12739, "foo": 12182, "{user1000}.following": 3443, "{user1000}.followers": 3443, "foo{}{bar}": 8363} {
		if got := keySlot([]byte(key)); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// The cluster writer follows MOVED (a slot moved after it read the slot
// map) and ASK (a slot being migrated).
func TestClusterWriterFollowsRedirects(t *testing.T) {
	c := testredis.StartCluster(t)
	ctx := context.Background()
	ep := engine.Endpoint{Host: c.Nodes[0].Host, Port: c.Nodes[0].Port}
	e := New(Config{})
	w, err := newClusterWriter(ctx, e, ep)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	byAddr := map[string]*testredis.Server{}
	for _, n := range c.Nodes {
		ids[n.Addr()] = fmt.Sprint(n.Do(t, "CLUSTER", "MYID"))
		byAddr[n.Addr()] = n
	}
	owner := func(key string) *testredis.Server {
		slots := c.Nodes[0].Client(t, 0).ClusterSlots(ctx).Val()
		s := keySlot([]byte(key))
		for _, r := range slots {
			if s >= r.Start && s <= r.End {
				return byAddr[r.Nodes[0].Addr]
			}
		}
		t.Fatalf("no owner for %q", key)
		return nil
	}
	other := func(n *testredis.Server) *testredis.Server {
		for _, m := range c.Nodes {
			if m != n {
				return m
			}
		}
		return nil
	}
	// MOVED: the slot of "moved-key" now belongs to another node.
	a := owner("moved-key")
	b := other(a)
	s := keySlot([]byte("moved-key"))
	b.Do(t, "CLUSTER", "SETSLOT", s, "IMPORTING", ids[a.Addr()])
	a.Do(t, "CLUSTER", "SETSLOT", s, "MIGRATING", ids[b.Addr()])
	for _, n := range c.Nodes {
		n.Do(t, "CLUSTER", "SETSLOT", s, "NODE", ids[b.Addr()])
	}
	// ASK: the slot of "ask-key" is being migrated.
	a2 := owner("ask-key")
	b2 := other(a2)
	s2 := keySlot([]byte("ask-key"))
	b2.Do(t, "CLUSTER", "SETSLOT", s2, "IMPORTING", ids[a2.Addr()])
	a2.Do(t, "CLUSTER", "SETSLOT", s2, "MIGRATING", ids[b2.Addr()])

	for _, k := range []string{"moved-key", "ask-key"} {
		if err := w.send("key "+k, []byte("SET"), []byte(k), []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if got := b.Client(t, 0).Get(ctx, "moved-key").Val(); got != "v-moved-key" {
		t.Errorf("moved-key on the new owner = %q", got)
	}
	cl := goredis.NewClient(&goredis.Options{Addr: b2.Addr(), PoolSize: 1})
	defer cl.Close()
	pipe := cl.Pipeline()
	pipe.Do(ctx, "ASKING")
	get := pipe.Get(ctx, "ask-key")
	pipe.Exec(ctx)
	if get.Val() != "v-ask-key" {
		t.Errorf("ask-key on the importing node = %q (%v)", get.Val(), get.Err())
	}
}
