package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
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
