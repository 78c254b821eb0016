package budget

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestNilAndZeroAreUnlimited(t *testing.T) {
	for _, b := range []*Budget{nil, New(0)} {
		for range 100 {
			if _, err := b.Acquire(context.Background(), "j"); err != nil {
				t.Fatal(err)
			}
		}
		if b.InUse() != 0 || b.Usage("j") != (Usage{}) {
			t.Error("an unlimited budget counts")
		}
	}
}

func TestNeverMoreThanMax(t *testing.T) {
	b := New(3)
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			rel, err := b.Acquire(context.Background(), string(rune('a'+i%5)))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur++
			peak = max(peak, cur)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			cur--
			mu.Unlock()
			rel()
			rel() // twice is once
		})
	}
	wg.Wait()
	if peak > 3 || b.InUse() != 0 {
		t.Errorf("peak %d, in use at the end %d", peak, b.InUse())
	}
}

// A job holding every slot gets none back while another job waits: the
// freed slot goes to the job holding fewer.
func TestFreedSlotGoesToTheJobHoldingFewest(t *testing.T) {
	b := New(2)
	ctx := context.Background()
	big1, _ := b.Acquire(ctx, "big")
	big2, _ := b.Acquire(ctx, "big")
	got := make(chan string, 2)
	wait := func(job string) {
		rel, err := b.Acquire(ctx, job)
		if err != nil {
			t.Error(err)
			return
		}
		got <- job
		_ = rel
	}
	go wait("big") // the big job's next chunk, queued first
	waitFor(t, func() bool { return b.Usage("big").Waiting == 1 })
	go wait("small")
	waitFor(t, func() bool { return b.Usage("small").Waiting == 1 })
	if u := b.Usage("small"); u.Held != 0 || u.Waiting != 1 {
		t.Errorf("small: %+v, want waiting for a worker", u)
	}
	big1()
	if first := <-got; first != "small" {
		t.Errorf("the freed slot went to %s, want small", first)
	}
	big2()
	if second := <-got; second != "big" {
		t.Errorf("then %s, want big", second)
	}
}

func TestCancelledWaitLeavesNoTrace(t *testing.T) {
	b := New(1)
	rel, _ := b.Acquire(context.Background(), "a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := b.Acquire(ctx, "b")
		done <- err
	}()
	waitFor(t, func() bool { return b.Usage("b").Waiting == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	rel()
	if b.InUse() != 0 || b.Usage("b") != (Usage{}) {
		t.Errorf("in use %d, b %+v", b.InUse(), b.Usage("b"))
	}
	if _, err := b.Acquire(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
