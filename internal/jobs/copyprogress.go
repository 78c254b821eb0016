package jobs

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// CopyProgress is where a job's copy of rows is, table by table: what
// DescribeMigrateJobs shows as CopyProgress and TableProgress. It is
// stored with the job (Detail.Copy) as the migration goes, so that a
// restarted server still shows it; the rates are live figures, 0 in what
// is stored.
type CopyProgress struct {
	// RowsDone counts the rows committed on the target, those of earlier
	// runs of the job included; RowsTotal is the estimate made when the
	// copy was planned (RowsDone may pass it).
	RowsDone, RowsTotal int64
	// RowsPerSecond is the rate of the last RateWindow.
	RowsPerSecond int64
	// EtaSeconds is the time the copy still needs at that rate, for the
	// rows the estimates leave: 0 when every table is copied, -1 when it
	// cannot be told (no rows moved recently, the tables left have passed
	// their estimates, or the copy does not run now).
	EtaSeconds  int64
	TablesDone  int
	TablesTotal int
	// Tables are every table of a job of at most MaxListedTables tables;
	// of a larger job, the tables being copied (at most MaxListedTables,
	// the most recently active first) and then the largest of those not
	// started (at most MaxListedTables).
	Tables []TableProgress
}

// TableProgress is one table's copy.
type TableProgress struct {
	Database, Schema, Table string
	RowsDone, RowsTotal     int64
	RowsPerSecond           int64
	// Status is TableWaiting, TableCopying or TableDone.
	Status string
}

// Table statuses.
const (
	TableWaiting = "waiting"
	TableCopying = "copying"
	TableDone    = "done"
)

// MaxListedTables caps each part of CopyProgress.Tables, so that a job of
// thousands of tables does not make a huge answer.
const MaxListedTables = 20

// RateWindow is the span rows per second are measured over.
const RateWindow = 10 * time.Second

// rateBuckets is RateWindow in one-second buckets.
const rateBuckets = int64(RateWindow / time.Second)

// rate counts rows in one-second buckets over the last RateWindow.
type rate struct {
	sec  [rateBuckets]int64
	rows [rateBuckets]int64
}

func (r *rate) add(now time.Time, n int64) {
	s := now.Unix()
	i := ((s % rateBuckets) + rateBuckets) % rateBuckets
	if r.sec[i] != s {
		r.sec[i], r.rows[i] = s, 0
	}
	r.rows[i] += n
}

// perSecond is the rate over the last RateWindow, or over the time since
// the figures started when that is shorter (at least a second).
func (r *rate) perSecond(now, since time.Time) float64 {
	s := now.Unix()
	var sum int64
	for i, sec := range r.sec {
		if sec > s-rateBuckets && sec <= s {
			sum += r.rows[i]
		}
	}
	if sum == 0 {
		return 0
	}
	span := min(RateWindow, now.Sub(since))
	span = max(span, time.Second)
	return float64(sum) / span.Seconds()
}

// copyTracker keeps one run's table reports and makes the summaries. Its
// update is called per committed chunk: it is O(1).
type copyTracker struct {
	mu     sync.Mutex
	now    func() time.Time
	start  time.Time
	tables map[engine.TableRef]*trackedTable
	order  []*trackedTable
	job    rate
	// Totals, kept as reports come.
	rowsDone, rowsTotal, remaining int64
	tablesDone                     int
	// changed says a report came since the last stored summary.
	changed bool
	// reports counts the reports; cached is the last live summary, made
	// at cachedAt after cachedReports reports.
	reports       uint64
	cached        *CopyProgress
	cachedAt      time.Time
	cachedReports uint64
}

type trackedTable struct {
	p    engine.TableProgress
	rate rate
	// active is when rows of the table last moved in this run.
	active time.Time
}

func newCopyTracker(now func() time.Time) *copyTracker {
	return &copyTracker{now: now, tables: map[engine.TableRef]*trackedTable{}}
}

// remainingOf is what a table adds to the rows left.
func remainingOf(p engine.TableProgress) int64 {
	if p.Done {
		return 0
	}
	return max(p.RowsTotal-p.RowsDone, 0)
}

// update takes a table's report. Its first report in the run is the
// baseline: only rows reported after it count for the rates. Reports of
// chunks committed at once by several workers may come in another order:
// a table keeps the most rows reported, and stays done once it is.
func (c *copyTracker) update(p engine.TableProgress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.start.IsZero() {
		c.start = now
	}
	t := c.tables[p.Table]
	if t == nil {
		t = &trackedTable{}
		c.tables[p.Table] = t
		c.order = append(c.order, t)
	} else {
		p.RowsDone = max(p.RowsDone, t.p.RowsDone)
		p.Done = p.Done || t.p.Done
		if delta := p.RowsDone - t.p.RowsDone; delta > 0 {
			t.rate.add(now, delta)
			c.job.add(now, delta)
			t.active = now
		}
		c.rowsDone -= t.p.RowsDone
		c.rowsTotal -= t.p.RowsTotal
		c.remaining -= remainingOf(t.p)
		if t.p.Done {
			c.tablesDone--
		}
	}
	t.p = p
	c.rowsDone += p.RowsDone
	c.rowsTotal += p.RowsTotal
	c.remaining += remainingOf(p)
	if p.Done {
		c.tablesDone++
	}
	c.changed = true
	c.reports++
}

// live is the summary with the current rates; readers polling a copy
// that did not move within a quarter second share one.
func (c *copyTracker) live() *CopyProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) == 0 {
		return nil
	}
	now := c.now()
	if c.cached == nil || c.cachedReports != c.reports || now.Sub(c.cachedAt) >= 250*time.Millisecond || now.Before(c.cachedAt) {
		c.cached, c.cachedAt, c.cachedReports = c.summary(now, true), now, c.reports
	}
	return c.cached
}

// final is the summary to keep when the run ends (nil when no table
// reported).
func (c *copyTracker) final() *CopyProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) == 0 {
		return nil
	}
	c.changed = false
	return c.summary(c.now(), false)
}

// toStore is the summary to store when a report came since the last one
// (nil otherwise), with the rates left out: a reader of the stored figures
// does not know how old they are.
func (c *copyTracker) toStore() *CopyProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.changed || len(c.order) == 0 {
		return nil
	}
	c.changed = false
	return c.summary(c.now(), false)
}

// summary makes a CopyProgress; the lock must be held.
func (c *copyTracker) summary(now time.Time, rates bool) *CopyProgress {
	out := &CopyProgress{
		RowsDone: c.rowsDone, RowsTotal: c.rowsTotal,
		TablesDone: c.tablesDone, TablesTotal: len(c.order),
		EtaSeconds: -1,
	}
	if rates {
		r := c.job.perSecond(now, c.start)
		out.RowsPerSecond = int64(r + 0.5)
		if c.remaining > 0 && r > 0 {
			out.EtaSeconds = int64(float64(c.remaining)/r + 0.999)
		}
	}
	if c.tablesDone == len(c.order) {
		out.EtaSeconds = 0
	}
	row := func(t *trackedTable) TableProgress {
		tp := TableProgress{Database: t.p.Table.Database, Schema: t.p.Table.Schema, Table: t.p.Table.Table,
			RowsDone: t.p.RowsDone, RowsTotal: t.p.RowsTotal, Status: tableStatus(t)}
		if rates && tp.Status == TableCopying {
			tp.RowsPerSecond = int64(t.rate.perSecond(now, c.start) + 0.5)
		}
		return tp
	}
	if len(c.order) <= MaxListedTables {
		out.Tables = make([]TableProgress, len(c.order))
		for i, t := range c.order {
			out.Tables[i] = row(t)
		}
		return out
	}
	var copying, waiting []*trackedTable
	for _, t := range c.order {
		switch tableStatus(t) {
		case TableCopying:
			copying = append(copying, t)
		case TableWaiting:
			waiting = append(waiting, t)
		}
	}
	copying = firstBy(copying, func(a, b *trackedTable) int {
		return cmp.Or(b.active.Compare(a.active), cmp.Compare(b.p.RowsDone, a.p.RowsDone))
	})
	waiting = firstBy(waiting, func(a, b *trackedTable) int { return cmp.Compare(b.p.RowsTotal, a.p.RowsTotal) })
	for _, t := range append(copying, waiting...) {
		out.Tables = append(out.Tables, row(t))
	}
	return out
}

// firstBy returns the first MaxListedTables of ts in order cmp (stable).
func firstBy(ts []*trackedTable, order func(a, b *trackedTable) int) []*trackedTable {
	slices.SortStableFunc(ts, order)
	return ts[:min(len(ts), MaxListedTables)]
}

func tableStatus(t *trackedTable) string {
	switch {
	case t.p.Done:
		return TableDone
	case t.p.RowsDone > 0 || !t.active.IsZero():
		return TableCopying
	}
	return TableWaiting
}

// stale is a stored summary as shown while its copy does not run in this
// process: no rates, and no ETA unless it is done.
func (c *CopyProgress) stale() *CopyProgress {
	out := *c
	out.RowsPerSecond = 0
	out.EtaSeconds = -1
	if c.TablesDone == c.TablesTotal {
		out.EtaSeconds = 0
	}
	out.Tables = slices.Clone(c.Tables)
	for i := range out.Tables {
		out.Tables[i].RowsPerSecond = 0
	}
	return &out
}

// TableProgress takes a table's report from the copy (engine.Reporter).
// It comes from a copy worker after each chunk: the save it may call for
// runs on a goroutine of its own, never the worker's.
func (r *reporter) TableProgress(p engine.TableProgress) {
	r.copy.update(p)
	r.mu.Lock()
	if r.flushing {
		r.mu.Unlock()
		return
	}
	r.flushing = true
	wait := max(r.saveEvery-time.Since(r.lastSave), 0)
	r.mu.Unlock()
	time.AfterFunc(wait, func() {
		r.mu.Lock()
		r.flushing = false
		r.mu.Unlock()
		r.flush()
	})
}

// trackCopy starts the figures of a run's copy.
func (s *Service) trackCopy(id string) *copyTracker {
	t := newCopyTracker(s.now)
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.copies == nil {
		s.copies = map[string]*copyTracker{}
	}
	s.copies[id] = t
	return t
}

// endCopy stores the last figures of a run's copy on the job, whatever
// its status now (a Stop has moved it past those at which progress is
// saved), and drops the live ones. The service's lock must not be held.
func (s *Service) endCopy(id string, t *copyTracker) {
	if last := t.final(); last != nil {
		s.update(id, func(j *Job) bool {
			j.Detail.Copy = last
			return true
		})
	}
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.copies[id] == t {
		delete(s.copies, id)
	}
}

// withCopy puts into a job read from the store its copy's live figures,
// when it runs here, or marks the stored ones stale. j may share its
// slices with other readers: only its own fields are replaced.
func (s *Service) withCopy(j *Job) {
	s.liveMu.Lock()
	t := s.copies[j.ID]
	s.liveMu.Unlock()
	if t != nil {
		if live := t.live(); live != nil {
			j.Detail.Copy = live
			return
		}
	}
	if j.Detail.Copy != nil {
		j.Detail.Copy = j.Detail.Copy.stale()
	}
}
