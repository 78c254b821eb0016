package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/testredis"
)

// compareCluster compares every key the source holds in database 0 with
// the target's, through cluster-aware clients on the sides that are
// clusters.
func compareCluster(t *testing.T, src, dst goredis.UniversalClient, srcScan []*goredis.Client) {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, s := range srcScan {
		iter := s.Scan(ctx, 0, "", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			n++
			a, b := src.Dump(ctx, k).Val(), dst.Dump(ctx, k).Val()
			if a != b && valueOf(ctx, src, k) != valueOf(ctx, dst, k) {
				t.Errorf("key %q differs", k)
			}
			if ta, tb := src.PTTL(ctx, k).Val(), dst.PTTL(ctx, k).Val(); (ta < 0) != (tb < 0) {
				t.Errorf("key %q: TTL %v on the source, %v on the target", k, ta, tb)
			}
		}
	}
	var total atomic.Int64
	if cc, ok := dst.(*goredis.ClusterClient); ok {
		// ForEachMaster calls at once, one goroutine a master.
		cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			total.Add(c.DBSize(ctx).Val())
			return nil
		})
	} else {
		total.Store(dst.DBSize(ctx).Val())
	}
	// The target also holds the job's checkpoint key.
	if total.Load()-1 != int64(n) {
		t.Errorf("the source holds %d keys, the target %d besides the checkpoint", n, total.Load()-1)
	}
}

func fillDB0(t *testing.T, s *testredis.Server) {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), PoolSize: 1})
	defer c.Close()
	testredis.Populate(t, c)
	ctx := context.Background()
	c.Do(ctx, "SELECT", 0)
	for i := range 3000 {
		c.Set(ctx, fmt.Sprintf("{tag%d}:k%d", i%50, i), i, 0)
	}
}

func clusterEndpoint(c *testredis.Cluster) engine.Endpoint {
	n := c.Nodes[0]
	return engine.Endpoint{DatabaseType: "redis", Host: n.Host, Port: n.Port, Password: c.Password}
}

func TestStandaloneToCluster(t *testing.T) {
	src := testredis.Start(t)
	fillDB0(t, src)
	dst := testredis.StartCluster(t)
	sp := spec("job-s2c", src, src, engine.MigrateFull)
	sp.Target = clusterEndpoint(dst)
	if err := driver.Migrate(context.Background(), newEngine(), sp, newRecorder(), nil); err != nil {
		t.Fatal(err)
	}
	sc := src.Client(t, 0)
	compareCluster(t, sc, dst.Client(t), []*goredis.Client{sc})
	for _, n := range dst.Nodes {
		if fmt.Sprint(n.Do(t, "FUNCTION", "LIST")) == "[]" {
			t.Errorf("node %s has no function library", n.Addr())
		}
	}
}

func TestClusterToCluster(t *testing.T) {
	src := testredis.StartCluster(t)
	dst := testredis.StartCluster(t)
	cc := src.Client(t)
	ctx := context.Background()
	for i := range 5000 {
		cc.Set(ctx, fmt.Sprintf("key:%d", i), i, 0)
		if i%10 == 0 {
			cc.HSet(ctx, fmt.Sprintf("hash:%d", i), "f", i, "g", "x")
			cc.RPush(ctx, fmt.Sprintf("list:%d", i), i, i+1)
			cc.SetEx(ctx, fmt.Sprintf("ttl:%d", i), i, 3600e9)
		}
	}
	sp := spec("job-c2c", src.Nodes[0], src.Nodes[0], engine.MigrateFull)
	sp.Source, sp.Target = clusterEndpoint(src), clusterEndpoint(dst)
	rec := newRecorder()
	if err := driver.Migrate(ctx, newEngine(), sp, rec, nil); err != nil {
		t.Fatal(err)
	}
	var scans []*goredis.Client
	for _, n := range src.Nodes {
		scans = append(scans, n.Client(t, 0))
	}
	compareCluster(t, cc, dst.Client(t), scans)
	if len(rec.verified) != 1 || rec.verified[0].Differences != 0 || rec.verified[0].Rows < 5000 {
		t.Errorf("the verifier found %+v", rec.verified)
	}
}

func TestClusterRefusesIncremental(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.StartCluster(t)
	sp := spec("job-c-incr", src, src, engine.MigrateFullAndIncremental)
	sp.Target = clusterEndpoint(dst)
	if _, err := newEngine().Open(context.Background(), sp); err == nil {
		t.Fatal("a full + incremental job into a cluster was accepted")
	}
	want(t, items(t, sp), "ClusterCheck", engine.ResultFail)
}

// valueOf is a key's value in a form that does not depend on its
// encoding or on a hash table's order.
func valueOf(ctx context.Context, c goredis.UniversalClient, k string) string {
	switch c.Type(ctx, k).Val() {
	case "string":
		return c.Get(ctx, k).Val()
	case "list":
		return fmt.Sprint(c.LRange(ctx, k, 0, -1).Val())
	case "set":
		m := c.SMembers(ctx, k).Val()
		slices.Sort(m)
		return fmt.Sprint(m)
	case "hash":
		return fmt.Sprint(c.HGetAll(ctx, k).Val()) // fmt sorts map keys
	case "zset":
		return fmt.Sprint(c.ZRangeWithScores(ctx, k, 0, -1).Val())
	}
	return c.Dump(ctx, k).Val()
}
