package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/testredis"
)

// A full + incremental run under a write load whose job a newer epoch
// takes over has its next transaction's EXEC refused (its counter
// increments stop landing), ends with ErrFenced without a retry, cannot
// open again under its old epoch, and the newer run completes exactly.
func TestFenceRedisStream(t *testing.T) {
	src := populated(t)
	dst := testredis.Start(t)
	e := newEngine()
	sp := spec("job-fence", src, dst, engine.MigrateFullAndIncremental)
	sp.Epoch = 5
	stopLoad := make(chan struct{})
	loaded := load(t, src, stopLoad)

	ctx := context.Background()
	rec := newRecorder()
	old := make(chan error, 1)
	go func() { old <- driver.Migrate(ctx, e, sp, rec, make(chan string)) }()
	select {
	case <-rec.caught:
	case err := <-old:
		t.Fatalf("the run ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not caught up after 60 s")
	}

	sp6 := sp
	sp6.Epoch, sp6.Resume = 6, true
	m6, err := e.Open(ctx, sp6)
	if err != nil {
		t.Fatal(err)
	}
	m6.Close()
	select {
	case err = <-old:
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced stream did not end")
	}
	if !errors.Is(err, engine.ErrFenced) || !strings.Contains(err.Error(), "commit refused: job job-fence is now owned by epoch 6 (this run has epoch 5") {
		t.Fatalf("the old run: %v", err)
	}
	t.Logf("refused: %v", err)
	// Nothing lands after the refusal: the target's counter stays put
	// while the source's goes on.
	before := fmt.Sprint(dst.Do(t, "GET", "counter"))
	time.Sleep(300 * time.Millisecond)
	if after := fmt.Sprint(dst.Do(t, "GET", "counter")); after != before {
		t.Fatalf("the target's counter moved from %s to %s after the old run was fenced", before, after)
	}
	if _, err := e.Open(ctx, sp); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("opening again with epoch 5: %v", err)
	}

	rec = newRecorder()
	complete := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, sp6, rec, complete) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("the epoch 6 run ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the epoch 6 run not caught up after 60 s")
	}
	close(stopLoad)
	n := loaded()
	complete <- engine.CompleteWaitForSync
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := strconv.Atoi(fmt.Sprint(dst.Do(t, "GET", "counter")))
	if got != n {
		t.Fatalf("counter is %d on the target, %d increments were made", got, n)
	}
	testredis.Compare(t, src, dst, []int{0, 3}, 2000)
}

// A copy that finds a newer epoch refuses its checkpoint writes.
func TestFenceRedisCheckpoint(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.Start(t)
	src.Do(t, "SET", "k", "v")
	e := newEngine()
	sp := spec("job-fence-cp", src, dst, engine.MigrateFull)
	sp.Epoch = 5
	ctx := context.Background()
	m5, err := e.Open(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	defer m5.Close()
	if err := m5.SavePhase(ctx, engine.PhaseCopy); err != nil {
		t.Fatal(err)
	}
	sp6 := sp
	sp6.Epoch = 6
	m6, err := e.Open(ctx, sp6)
	if err != nil {
		t.Fatal(err)
	}
	m6.Close()
	if err := m5.SavePhase(ctx, engine.PhaseObjects); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("the old run saved its phase: %v", err)
	}
	if err := m5.Copy(ctx, nopCopyReport{}); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("the old run copied: %v", err)
	}
	if v := fmt.Sprint(dst.Do(t, "EXISTS", "k")); v != "0" {
		t.Fatalf("the old run's copy wrote to the target (EXISTS k = %s)", v)
	}
	sp6.Resume = true
	if err := driver.Migrate(ctx, e, sp6, newRecorder(), nil); err != nil {
		t.Fatal(err)
	}
	testredis.Compare(t, src, dst, []int{0}, 2000)
}

type nopCopyReport struct{}

func (nopCopyReport) Snapshotted()                 {}
func (nopCopyReport) Copied(int)                   {}
func (nopCopyReport) Table(p engine.TableProgress) {}

// Into a cluster target, a run whose job a newer epoch took over ends
// with ErrFenced at its next batch's floor checkpoint (the per-slot
// transactions cannot WATCH the fence: one batch may land, and is
// idempotent for the new owner through the slot checkpoints); the newer
// run completes with counters exact.
func TestFenceRedisClusterTarget(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.StartCluster(t)
	fillDB0(t, src)
	sp := spec("job-fence-c", src, src, engine.MigrateFullAndIncremental)
	sp.Target = clusterEndpoint(dst)
	sp.MigrateObject = engine.MigrateObjectSelected
	sp.Objects = []engine.ObjectSelection{{Database: "0"}}
	sp.Epoch = 5
	e := newEngine()
	ctx := context.Background()
	rec := newRecorder()
	old := make(chan error, 1)
	go func() { old <- driver.Migrate(ctx, e, sp, rec, make(chan string)) }()
	select {
	case <-rec.caught:
	case err := <-old:
		t.Fatalf("the run ended before catching up: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("not caught up")
	}
	sp6 := sp
	sp6.Epoch, sp6.Resume = 6, true
	m6, err := e.Open(ctx, sp6)
	if err != nil {
		t.Fatal(err)
	}
	m6.Close()
	sc := src.Client(t, 0)
	for i := range 50 {
		sc.Incr(ctx, "counter")
		sc.Incr(ctx, "counter:"+strconv.Itoa(i%7))
	}
	select {
	case err = <-old:
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced stream did not end")
	}
	if !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("the old run: %v", err)
	}
	t.Logf("refused: %v", err)
	rec = newRecorder()
	complete := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, sp6, rec, complete) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("the epoch 6 run ended before catching up: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("the epoch 6 run not caught up")
	}
	for i := range 50 {
		sc.Incr(ctx, "counter:"+strconv.Itoa(i%7))
	}
	complete <- engine.CompleteWaitForSync
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cc := dst.Client(t)
	for _, k := range []string{"counter", "counter:3"} {
		if a, b := sc.Get(ctx, k).Val(), cc.Get(ctx, k).Val(); a != b {
			t.Errorf("%s: %q on the source, %q on the target", k, a, b)
		}
	}
	compareClusterSkipping(t, sc, cc, []*goredis.Client{sc}, "opendts:{")
}

// A copy whose job a newer epoch takes over while its RESTOREs go stops
// within about a second, and the newer run copies the job exactly.
func TestFenceRedisCopy(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.Start(t)
	ctx := context.Background()
	sc := src.Client(t, 0)
	for i := 0; i < 600000; i += 1000 {
		kv := make([]any, 0, 2000)
		for j := i; j < i+1000; j++ {
			kv = append(kv, "k:"+strconv.Itoa(j), strconv.Itoa(j))
		}
		if err := sc.MSet(ctx, kv...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine()
	sp := spec("job-fence-copy", src, dst, engine.MigrateFull)
	sp.Epoch = 5
	old := make(chan error, 1)
	go func() { old <- driver.Migrate(ctx, e, sp, newRecorder(), nil) }()
	dc := dst.Client(t, 0)
	waitKeys := time.Now().Add(60 * time.Second)
	for dc.DBSize(ctx).Val() < 1000 {
		if time.Now().After(waitKeys) {
			t.Fatal("the copy wrote nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sp6 := sp
	sp6.Epoch, sp6.Resume = 6, true
	m6, err := e.Open(ctx, sp6)
	if err != nil {
		t.Fatal(err)
	}
	m6.Close()
	claimed := time.Now()
	select {
	case err = <-old:
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced copy did not end")
	}
	if !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("the old run: %v", err)
	}
	t.Logf("refused %s after the claim: %v", time.Since(claimed).Round(time.Millisecond), err)
	if time.Since(claimed) > 3*time.Second {
		t.Errorf("the old copy went on for %s after the claim", time.Since(claimed))
	}
	n := dc.DBSize(ctx).Val()
	time.Sleep(300 * time.Millisecond)
	if m := dc.DBSize(ctx).Val(); m != n {
		t.Fatalf("the target went from %d to %d keys after the old run ended", n, m)
	}
	if err := driver.Migrate(ctx, e, sp6, newRecorder(), nil); err != nil {
		t.Fatal(err)
	}
	testredis.Compare(t, src, dst, []int{0}, 2000)
}
