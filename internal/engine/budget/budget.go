// Package budget shares a node's copy workers among the jobs running on
// it. Each job keeps its own pool of workers and connections (its
// snapshot needs them opened together), but a worker copies a chunk only
// while it holds a slot of the node's budget, taken per chunk and given
// back after it: the node never copies more than Max chunks at once,
// whatever the number of jobs, and slots rotate at chunk boundaries.
//
// Fairness: a freed slot goes to the waiting job that holds the fewest
// slots (the longest waiting among equals), so a job with thousands of
// chunks cannot keep the others waiting: every job gets a worker as soon
// as one frees, and the busiest job gets what is left.
package budget

import (
	"context"
	"sync"
)

// Budget is a node's copy workers. A nil Budget, or one of Max 0, is
// unlimited.
type Budget struct {
	max int

	mu      sync.Mutex
	inUse   int
	held    map[string]int // job -> slots held
	waiting []*waiter
	seq     uint64
}

type waiter struct {
	job   string
	seq   uint64
	ready chan struct{}
}

// New returns a budget of max workers; max <= 0 is unlimited.
func New(max int) *Budget {
	return &Budget{max: max, held: map[string]int{}}
}

// Max is the budget's size, 0 when unlimited.
func (b *Budget) Max() int {
	if b == nil || b.max <= 0 {
		return 0
	}
	return b.max
}

// Acquire waits for a slot for job and returns what gives it back (safe
// to call more than once). It fails only when ctx ends first.
func (b *Budget) Acquire(ctx context.Context, job string) (release func(), err error) {
	if b.Max() == 0 {
		return func() {}, nil
	}
	b.mu.Lock()
	if b.inUse < b.max && len(b.waiting) == 0 {
		b.grantLocked(job)
		b.mu.Unlock()
		return b.releaser(job), nil
	}
	w := &waiter{job: job, seq: b.seq, ready: make(chan struct{})}
	b.seq++
	b.waiting = append(b.waiting, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return b.releaser(job), nil
	case <-ctx.Done():
		b.mu.Lock()
		for i, x := range b.waiting {
			if x == w {
				b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
				b.mu.Unlock()
				return nil, ctx.Err()
			}
		}
		b.mu.Unlock()
		// Granted as ctx ended: give the slot to the next one.
		b.release(job)
		return nil, ctx.Err()
	}
}

func (b *Budget) releaser(job string) func() {
	var once sync.Once
	return func() { once.Do(func() { b.release(job) }) }
}

func (b *Budget) grantLocked(job string) {
	b.inUse++
	b.held[job]++
}

func (b *Budget) release(job string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inUse--
	if b.held[job]--; b.held[job] <= 0 {
		delete(b.held, job)
	}
	for b.inUse < b.max && len(b.waiting) > 0 {
		best := 0
		for i, w := range b.waiting[1:] {
			cur := b.waiting[best]
			if h, hc := b.held[w.job], b.held[cur.job]; h < hc || (h == hc && w.seq < cur.seq) {
				best = i + 1
			}
		}
		w := b.waiting[best]
		b.waiting = append(b.waiting[:best], b.waiting[best+1:]...)
		b.grantLocked(w.job)
		close(w.ready)
	}
}

// Usage is a job's share of the budget at one moment.
type Usage struct {
	// Held is the slots the job copies with now; Waiting, its workers
	// waiting for one.
	Held, Waiting int
}

// Usage tells how many slots job holds and how many of its workers wait.
// A job with workers waiting and no slot is waiting for a worker.
func (b *Budget) Usage(job string) Usage {
	if b.Max() == 0 {
		return Usage{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u := Usage{Held: b.held[job]}
	for _, w := range b.waiting {
		if w.job == job {
			u.Waiting++
		}
	}
	return u
}

// InUse is the slots held across the node.
func (b *Budget) InUse() int {
	if b.Max() == 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}
