package redis_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/redis"
	"github.com/opendts/opendts/internal/testredis"
)

// A copy stopped while the RDB is being applied starts again on emptied
// databases: keys deleted on the source meanwhile do not survive.
func TestCopyInterruptedStartsAgain(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.Start(t)
	src.Do(t, "DEBUG", "POPULATE", 300000, "k", 64)
	sp := spec("job-copy-again", src, dst, engine.MigrateFull)
	e := newEngine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, sp, newRecorder(), nil) }()
	for {
		n, _ := dst.Do(t, "DBSIZE").(int64)
		if n > 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the copy ended before it could be interrupted: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
	n, _ := dst.Do(t, "DBSIZE").(int64)
	t.Logf("interrupted with %d keys on the target", n)
	// Deleted on the source while the job is down: must not stay.
	src.Do(t, "DEL", "k:1", "k:2", "k:299999")
	sp.Resume = true
	if err := driver.Migrate(context.Background(), e, sp, newRecorder(), nil); err != nil {
		t.Fatal(err)
	}
	testredis.Compare(t, src, dst, []int{0}, 2000)
}

// A stream resumed after the source's backlog lost its position takes a
// full resync on emptied databases.
func TestBacklogLostTakesFullResync(t *testing.T) {
	src := populated(t)
	dst := testredis.Start(t)
	sp := spec("job-backlog", src, dst, engine.MigrateFullAndIncremental)
	sp.ExternParams = `{"ReplBacklogSize":1}`
	e := newEngine()
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, sp, rec, make(chan string)) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not caught up")
	}
	cancel()
	<-done
	// While opendts is away: more than the backlog holds, and a delete.
	big := strings.Repeat("y", 100<<10)
	for i := range 30 {
		src.Do(t, "SET", "filler", big+string(rune('a'+i)))
	}
	src.Do(t, "DEL", "s:raw")
	sp.Resume = true
	rec = newRecorder()
	complete := make(chan string, 1)
	go func() { done <- driver.Migrate(context.Background(), e, sp, rec, complete) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("resumed run ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("resumed run not caught up")
	}
	src.Do(t, "INCR", "after")
	complete <- engine.CompleteWaitForSync
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testredis.Compare(t, src, dst, []int{0, 3}, 2000)
}

// The stream rides out a restart of the source (which saves and reloads
// its data) and of the target (AOF): at the end both hold the same keys.
func TestSourceAndTargetRestart(t *testing.T) {
	src := testredis.Start(t, "--save", "3600 1")
	dst := testredis.Start(t, "--appendonly", "yes")
	src.Do(t, "SET", "before", "1")
	sp := spec("job-restarts", src, dst, engine.MigrateFullAndIncremental)
	e := newEngine()
	rec := newRecorder()
	complete := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(context.Background(), e, sp, rec, complete) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not caught up")
	}
	stop := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		c := src.Client(t, 0)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Errors while the source is down are expected: the source's
			// own counter is the truth the target is compared with.
			c.Incr(context.Background(), "counter")
			c.RPush(context.Background(), "list", "x")
		}
	}()
	time.Sleep(300 * time.Millisecond)
	src.Restart(t, 300*time.Millisecond)
	time.Sleep(time.Second)
	dst.Restart(t, 300*time.Millisecond)
	time.Sleep(2 * time.Second)
	close(stop)
	<-loaded
	complete <- engine.CompleteWaitForSync
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Complete did not finish")
	}
	testredis.Compare(t, src, dst, []int{0}, 2000)
}

// Keys larger than one command should carry go in bounded batches: a
// 50 MB string and a list of 1,000,000 elements, with their TTLs.
func TestBigKeys(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.Start(t)
	c := src.Client(t, 0)
	ctx := context.Background()
	big := make([]byte, 50<<20)
	rand.Read(big) // incompressible: the RDB holds all 50 MB
	if err := c.Set(ctx, "big:string", big, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Eval(ctx, "for i = 1, 1000000 do redis.call('RPUSH', KEYS[1], 'element-' .. i * 7919) end return 1", []string{"big:list"}).Err(); err != nil {
		t.Fatal(err)
	}
	c.Eval(ctx, "for i = 1, 200000 do redis.call('HSET', KEYS[1], 'f' .. i, i) end return 1", []string{"big:hash"})
	c.Eval(ctx, "for i = 1, 200000 do redis.call('ZADD', KEYS[1], i / 3, 'm' .. i) end return 1", []string{"big:zset"})
	c.Eval(ctx, "for i = 1, 200000 do redis.call('SADD', KEYS[1], 'm' .. i) end return 1", []string{"big:set"})
	c.Expire(ctx, "big:list", time.Hour)
	sp := spec("job-big", src, dst, engine.MigrateFull)
	// 1 MiB: every big key goes in pieces of the default 1,000 elements
	// (the RDB compresses the list's elements below the default 8 MiB).
	if err := driver.Migrate(ctx, redis.New(redis.Config{BigKeyBytes: 1 << 20}), sp, newRecorder(), nil); err != nil {
		t.Fatal(err)
	}
	testredis.Compare(t, src, dst, []int{0}, 5000)
}
