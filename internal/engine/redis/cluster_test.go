package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

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
	compareClusterSkipping(t, src, dst, srcScan, "")
}

// compareClusterSkipping is compareCluster; with own set, the target's
// keys starting with it are opendts's (one checkpoint otherwise).
func compareClusterSkipping(t *testing.T, src, dst goredis.UniversalClient, srcScan []*goredis.Client, own string) {
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
	var total, mine atomic.Int64
	count := func(ctx context.Context, c *goredis.Client) error {
		total.Add(c.DBSize(ctx).Val())
		if own != "" {
			iter := c.Scan(ctx, 0, own+"*", 1000).Iterator()
			for iter.Next(ctx) {
				mine.Add(1)
			}
		}
		return nil
	}
	if cc, ok := dst.(*goredis.ClusterClient); ok {
		// ForEachMaster calls at once, one goroutine a master.
		cc.ForEachMaster(ctx, count)
	} else {
		count(ctx, dst.(*goredis.Client))
	}
	if own == "" {
		mine.Store(1) // the job's checkpoint key
	}
	if got := total.Load() - mine.Load(); got != int64(n) {
		t.Errorf("the source holds %d keys, the target %d besides opendts's own", n, got)
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

// A full + incremental job into a cluster under a load of non-idempotent
// commands, multi-key DEL and MSET across slots, and expiring keys,
// stopped in the middle of its stream and resumed: exactly once per slot.
func TestStandaloneToClusterIncremental(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.StartCluster(t)
	fillDB0(t, src)
	sp := spec("job-s2c-incr", src, src, engine.MigrateFullAndIncremental)
	sp.Target = clusterEndpoint(dst)
	sp.MigrateObject = engine.MigrateObjectSelected
	sp.Objects = []engine.ObjectSelection{{Database: "0"}}
	e := newEngine()
	if res := items(t, sp); res["ClusterCheck"].Result != engine.ResultPass {
		t.Fatalf("ClusterCheck: %+v", res["ClusterCheck"])
	}
	ctx := context.Background()
	stop := make(chan struct{})
	n := make(chan int, 1)
	go func() {
		c := src.Client(t, 0)
		i := 0
		for {
			select {
			case <-stop:
				n <- i
				return
			default:
			}
			k := strconv.Itoa(i)
			pipe := c.TxPipeline()
			pipe.Incr(ctx, "counter")
			pipe.Incr(ctx, "counter:"+strconv.Itoa(i%7))
			pipe.LPush(ctx, "log", i)
			pipe.Append(ctx, "appended", "x")
			pipe.MSet(ctx, "m:a:"+k, i, "m:b:"+k, i)
			pipe.Del(ctx, "m:a:"+strconv.Itoa(i-5), "m:b:"+strconv.Itoa(i-5))
			pipe.Set(ctx, "short:"+k, i, 200*time.Millisecond)
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("load: %v", err)
			}
			i++
		}
	}()
	run := func(resume bool, until func(*recorder) bool) {
		sp.Resume = resume
		rec := newRecorder()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		complete := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- driver.Migrate(cctx, e, sp, rec, complete) }()
		select {
		case <-rec.caught:
		case err := <-done:
			t.Fatalf("ended before catching up: %v", err)
		case <-time.After(90 * time.Second):
			t.Fatal("not caught up")
		}
		if until(rec) {
			complete <- engine.CompleteWaitForSync
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		}
		time.Sleep(500 * time.Millisecond)
		cancel()
		<-done
	}
	run(false, func(*recorder) bool { return false })
	run(true, func(*recorder) bool {
		time.Sleep(500 * time.Millisecond)
		close(stop)
		<-n
		return true
	})
	sc := src.Client(t, 0)
	cc := dst.Client(t)
	for _, k := range []string{"counter", "counter:3", "appended"} {
		if a, b := sc.Get(ctx, k).Val(), cc.Get(ctx, k).Val(); a != b {
			t.Errorf("%s: %q on the source, %q on the target", k, a, b)
		}
	}
	if a, b := sc.LLen(ctx, "log").Val(), cc.LLen(ctx, "log").Val(); a != b {
		t.Errorf("log: %d elements on the source, %d on the target", a, b)
	}
	time.Sleep(300 * time.Millisecond) // the short keys expire on both sides
	compareClusterSkipping(t, sc, cc, []*goredis.Client{sc}, "opendts:{")
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

// Full + incremental from a cluster: each master's stream on its own,
// into a cluster and into a standalone server, stopped and resumed in the
// middle under load: counters exact, keys equal.
func TestClusterSourceIncremental(t *testing.T) {
	for _, into := range []string{"cluster", "standalone"} {
		t.Run(into, func(t *testing.T) {
			src := testredis.StartCluster(t)
			sc := src.Client(t)
			ctx := context.Background()
			for i := range 3000 {
				sc.Set(ctx, fmt.Sprintf("key:%d", i), i, 0)
			}
			sp := spec("job-c-incr-"+into, src.Nodes[0], src.Nodes[0], engine.MigrateFullAndIncremental)
			sp.Source = clusterEndpoint(src)
			var dst goredis.UniversalClient
			if into == "cluster" {
				d := testredis.StartCluster(t)
				sp.Target, dst = clusterEndpoint(d), d.Client(t)
			} else {
				d := testredis.Start(t)
				sp.Target, dst = endpoint(d), d.Client(t, 0)
			}
			stop := make(chan struct{})
			loaded := make(chan struct{})
			go func() {
				defer close(loaded)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					pipe := sc.Pipeline()
					for k := range 8 {
						pipe.Incr(ctx, fmt.Sprintf("counter:%d", k))
					}
					pipe.LPush(ctx, "log", i)
					pipe.Append(ctx, "appended", "x")
					pipe.Set(ctx, fmt.Sprintf("short:%d", i), i, 200*time.Millisecond)
					pipe.Del(ctx, fmt.Sprintf("key:%d", i%3000))
					if _, err := pipe.Exec(ctx); err != nil {
						t.Errorf("load: %v", err)
						return
					}
				}
			}()
			e := newEngine()
			run := func(resume, last bool) {
				sp.Resume = resume
				rec := newRecorder()
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				complete := make(chan string, 1)
				done := make(chan error, 1)
				go func() { done <- driver.Migrate(cctx, e, sp, rec, complete) }()
				select {
				case <-rec.caught:
				case err := <-done:
					t.Fatalf("ended before catching up: %v", err)
				case <-time.After(90 * time.Second):
					t.Fatal("not caught up")
				}
				time.Sleep(500 * time.Millisecond)
				if !last {
					cancel()
					<-done
					return
				}
				close(stop)
				<-loaded
				complete <- engine.CompleteWaitForSync
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			run(false, false)
			run(true, true)
			for k := range 8 {
				key := fmt.Sprintf("counter:%d", k)
				if a, b := sc.Get(ctx, key).Val(), dst.Get(ctx, key).Val(); a != b || a == "" {
					t.Errorf("%s: %q on the source, %q on the target", key, a, b)
				}
			}
			if a, b := sc.LLen(ctx, "log").Val(), dst.LLen(ctx, "log").Val(); a != b {
				t.Errorf("log: %d on the source, %d on the target", a, b)
			}
			if a, b := sc.Get(ctx, "appended").Val(), dst.Get(ctx, "appended").Val(); a != b {
				t.Errorf("appended: %d bytes on the source, %d on the target", len(a), len(b))
			}
			time.Sleep(300 * time.Millisecond)
			var scans []*goredis.Client
			for _, n := range src.Nodes {
				scans = append(scans, n.Client(t, 0))
			}
			compareClusterSkipping(t, sc, dst, scans, "opendts:{")
		})
	}
}

// moveSlot moves a slot with its keys from its owner to another master,
// as redis-cli --cluster reshard does.
func moveSlot(t *testing.T, c *testredis.Cluster, slot int) {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	var from, to *testredis.Server
	for _, n := range c.Nodes {
		ids[n.Addr()] = fmt.Sprint(n.Do(t, "CLUSTER", "MYID"))
	}
	for _, r := range c.Nodes[0].Client(t, 0).ClusterSlots(ctx).Val() {
		if slot >= r.Start && slot <= r.End {
			for _, n := range c.Nodes {
				if n.Addr() == r.Nodes[0].Addr {
					from = n
				}
			}
		}
	}
	for _, n := range c.Nodes {
		if n != from {
			to = n
			break
		}
	}
	to.Do(t, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[from.Addr()])
	from.Do(t, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to.Addr()])
	fc := from.Client(t, 0)
	for {
		keys := fc.ClusterGetKeysInSlot(ctx, slot, 100).Val()
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", to.Host, to.Port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := fc.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("MIGRATE: %v", err)
		}
	}
	for _, n := range c.Nodes {
		n.Do(t, "CLUSTER", "SETSLOT", slot, "NODE", ids[to.Addr()])
	}
}

// A slot of the target moves to another master while the stream writes
// into it: the stream restarts from the slots' checkpoints, which moved
// with the slot, and nothing is lost or doubled.
func TestClusterTargetSlotMovesDuringStream(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.StartCluster(t)
	sp := spec("job-slot-moves", src, src, engine.MigrateFullAndIncremental)
	sp.Target = clusterEndpoint(dst)
	sp.MigrateObject = engine.MigrateObjectSelected
	sp.Objects = []engine.ObjectSelection{{Database: "0"}}
	ctx := context.Background()
	sc := src.Client(t, 0)
	sc.Set(ctx, "counter", 0, 0)
	rec := newRecorder()
	complete := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, newEngine(), sp, rec, complete) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("ended before catching up: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("not caught up")
	}
	stop := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sc.Incr(ctx, "counter")
			sc.RPush(ctx, "list", i)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	moveSlot(t, dst, keySlotOf("counter"))
	moveSlot(t, dst, keySlotOf("list"))
	time.Sleep(2 * time.Second)
	close(stop)
	<-loaded
	complete <- engine.CompleteWaitForSync
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Complete did not finish")
	}
	cc := dst.Client(t)
	if a, b := sc.Get(ctx, "counter").Val(), cc.Get(ctx, "counter").Val(); a != b {
		t.Errorf("counter: %s on the source, %s on the target", a, b)
	}
	if a, b := sc.LLen(ctx, "list").Val(), cc.LLen(ctx, "list").Val(); a != b {
		t.Errorf("list: %d on the source, %d on the target", a, b)
	}
}

// keySlotOf is CLUSTER KEYSLOT computed here.
func keySlotOf(key string) int {
	return int(crc16([]byte(key)) & 16383)
}

func crc16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c ^= uint16(x) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
	}
	return c
}
