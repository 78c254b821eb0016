package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opendts/opendts/internal/jobs"
)

// The reads served from the node's copy of the jobs (store_cache.go). They
// give what the SQLite store gives for the same jobs: the same matches,
// the same order (the column, then the job id, both reversed by Desc;
// strings compared bytewise as SQLite's BINARY collation does), the same
// pages and totals. The jobs returned are shallow copies of the copy's:
// their slices and Detail.Copy are shared with it and with other lists,
// so callers must not change what they point to (jobs.Store says so);
// setting a field of the job itself (Node) is safe.

// orders compare two entries on a Query.Order column.
var orders = map[string]func(a, b *entry) int{
	"":            func(a, b *entry) int { return cmp.Compare(a.created, b.created) },
	"CreateTime":  func(a, b *entry) int { return cmp.Compare(a.created, b.created) },
	"JobId":       func(a, b *entry) int { return 0 }, // the job id decides below
	"Status":      func(a, b *entry) int { return cmp.Compare(a.status, b.status) },
	"JobName":     func(a, b *entry) int { return strings.Compare(a.name, b.name) },
	"MigrateType": func(a, b *entry) int { return cmp.Compare(a.migrateType, b.migrateType) },
	"RunMode":     func(a, b *entry) int { return cmp.Compare(a.runMode, b.runMode) },
}

// ListJobs filters, orders and pages the jobs (without passwords) and
// counts all that match.
func (s *Store) ListJobs(ctx context.Context, q jobs.Query) ([]*jobs.Job, int, error) {
	by, ok := orders[q.Order]
	if !ok {
		return nil, 0, fmt.Errorf("unknown order %q", q.Order)
	}
	if err := s.catchUp(ctx, "list jobs"); err != nil {
		return nil, 0, err
	}
	page, total := s.list(q, by)
	return page, total, nil
}

// list is ListJobs on the copy as it is.
func (s *Store) list(q jobs.Query, by func(a, b *entry) int) ([]*jobs.Job, int) {
	order := func(a, b *entry) int {
		c := by(a, b)
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		if q.Desc {
			c = -c
		}
		return c
	}
	c := &s.cache
	c.mu.RLock()
	var matches []*entry
	if q.JobID != "" {
		if e := c.jobs[q.JobID]; e != nil && e.matches(&q) {
			matches = append(matches, e)
		}
	} else {
		for _, e := range c.jobs {
			if e.matches(&q) {
				matches = append(matches, e)
			}
		}
	}
	// Entries are never changed in place: the rest needs no lock.
	c.mu.RUnlock()
	total, offset := len(matches), max(q.Offset, 0)
	if offset >= total {
		return nil, total
	}
	n := total - offset
	if q.Limit > 0 {
		n = min(n, q.Limit)
	}
	page := smallest(matches, offset+n, order)[offset:]
	return copies(page), total
}

func (e *entry) matches(q *jobs.Query) bool {
	if q.JobName != "" && !strings.Contains(e.name, q.JobName) {
		return false
	}
	if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, e.status) {
		return false
	}
	for _, f := range q.Tags {
		if !slices.ContainsFunc(e.doc.Tags, func(t jobs.Tag) bool {
			return t.Key == f.Key && (len(f.Values) == 0 || slices.Contains(f.Values, t.Value))
		}) {
			return false
		}
	}
	return true
}

// smallest returns the k first of list in order, sorted. A page near the
// start of a long list (the usual DescribeMigrateJobs) keeps a heap of k
// instead of sorting everything: about len(list) comparisons.
func smallest(list []*entry, k int, order func(a, b *entry) int) []*entry {
	if k >= len(list)/4 {
		slices.SortFunc(list, order)
		return list[:k]
	}
	// h is a max-heap of the k best so far: h[0] is the worst of them.
	h := slices.Clone(list[:k])
	down := func(i int) {
		for {
			l, worst := 2*i+1, i
			if l < k && order(h[l], h[worst]) > 0 {
				worst = l
			}
			if r := l + 1; r < k && order(h[r], h[worst]) > 0 {
				worst = r
			}
			if worst == i {
				return
			}
			h[i], h[worst] = h[worst], h[i]
			i = worst
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, e := range list[k:] {
		if order(e, h[0]) < 0 {
			h[0] = e
			down(0)
		}
	}
	slices.SortFunc(h, order)
	return h
}

// copies are what a list hands out: a job of its own for each entry (its
// Revision set), sharing the entry's slices.
func copies(list []*entry) []*jobs.Job {
	if len(list) == 0 {
		return nil
	}
	out := make([]*jobs.Job, len(list))
	for i, e := range list {
		j := *e.job
		j.Revision = e.rev
		out[i] = &j
	}
	return out
}

// CountByStatus counts the jobs at each status, or only at those given.
func (s *Store) CountByStatus(ctx context.Context, only ...jobs.Status) (map[jobs.Status]int, error) {
	if err := s.catchUp(ctx, "count jobs"); err != nil {
		return nil, err
	}
	out := map[jobs.Status]int{}
	c := &s.cache
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.jobs {
		if len(only) == 0 || slices.Contains(only, e.status) {
			out[e.status]++
		}
	}
	return out, nil
}

// WritingInto returns the unfinished jobs whose target is one of targets
// and which write into one of databases or the whole instance (any
// database when databases is empty), by CreateTime then id, as the SQLite
// store's job_targets index finds them: a job whose selection does not
// parse writes into nothing.
func (s *Store) WritingInto(ctx context.Context, targets, databases []string) ([]*jobs.Job, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	if err := s.catchUp(ctx, "find the jobs writing into a target"); err != nil {
		return nil, err
	}
	c := &s.cache
	c.mu.RLock()
	var found []*entry
	for _, e := range c.jobs {
		if e.status == jobs.StatusSuccess || e.status == jobs.StatusFailed || len(e.dbs) == 0 || !slices.Contains(targets, e.target) {
			continue
		}
		if len(databases) == 0 || slices.ContainsFunc(e.dbs, func(db string) bool { return db == "" || slices.Contains(databases, db) }) {
			found = append(found, e)
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(found, func(a, b *entry) int {
		if c := cmp.Compare(a.created, b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return copies(found), nil
}
