package jobs

import (
	"fmt"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func ref(name string) engine.TableRef { return engine.TableRef{Database: "shop", Table: name} }

// The rates are those of the last 10 s (or of the run so far when it is
// shorter), rows committed by an earlier run count for the totals but not
// the rates, and the ETA is the rows the estimates leave at the job's rate.
func TestCopyRatesAndETA(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	c := newCopyTracker(clock.now)
	// Baselines: orders resumes with 4,000 rows committed before.
	c.update(engine.TableProgress{Table: ref("orders"), RowsDone: 4000, RowsTotal: 10000})
	c.update(engine.TableProgress{Table: ref("users"), RowsTotal: 1000})

	got := c.live()
	if got.RowsDone != 4000 || got.RowsTotal != 11000 || got.RowsPerSecond != 0 || got.EtaSeconds != -1 {
		t.Fatalf("before any chunk: %+v", got)
	}
	if got.Tables[0].Status != TableCopying || got.Tables[1].Status != TableWaiting {
		t.Errorf("statuses: %+v", got.Tables)
	}

	// 2 s in, 1,000 rows of orders: 500 rows/s over the 2 s so far.
	clock.advance(2 * time.Second)
	c.update(engine.TableProgress{Table: ref("orders"), RowsDone: 5000, RowsTotal: 10000})
	got = c.live()
	// Left: 5,000 of orders and 1,000 of users at 500 rows/s = 12 s.
	if got.RowsPerSecond != 500 || got.EtaSeconds != 12 {
		t.Errorf("after 2 s: %d rows/s, ETA %d s; want 500, 12", got.RowsPerSecond, got.EtaSeconds)
	}
	if got.Tables[0].RowsPerSecond != 500 || got.Tables[1].RowsPerSecond != 0 {
		t.Errorf("table rates: %+v", got.Tables)
	}

	// 5 s in, users is done in one chunk of 1,000: 2,000 rows in 5 s.
	clock.advance(3 * time.Second)
	c.update(engine.TableProgress{Table: ref("users"), RowsDone: 1000, RowsTotal: 1000, Done: true})
	got = c.live()
	if got.RowsPerSecond != 400 || got.EtaSeconds != 13 || got.TablesDone != 1 {
		t.Errorf("after 5 s: %+v; want 400 rows/s, ETA 13 s (5,000 left), 1 table done", got)
	}
	if got.Tables[1].Status != TableDone || got.Tables[1].RowsPerSecond != 0 {
		t.Errorf("a done table: %+v", got.Tables[1])
	}

	// 30 s in, nothing moved for 25 s: no rate, no ETA.
	clock.advance(25 * time.Second)
	got = c.live()
	if got.RowsPerSecond != 0 || got.EtaSeconds != -1 {
		t.Errorf("after a quiet 25 s: %d rows/s, ETA %d", got.RowsPerSecond, got.EtaSeconds)
	}

	// Then 3,000 rows a second for 3 s: the window of 10 s holds only
	// those.
	for _, done := range []int64{8000, 11000, 14000} {
		clock.advance(time.Second)
		c.update(engine.TableProgress{Table: ref("orders"), RowsDone: done, RowsTotal: 10000})
	}
	got = c.live()
	// 5,000 + 3 x 3,000 = 14,000 > 10,000 estimated: past the estimate,
	// not done, no rows left by the estimates: no ETA.
	if got.RowsPerSecond != 900 || got.EtaSeconds != -1 {
		t.Errorf("past the estimate: %d rows/s, ETA %d; want 900, -1", got.RowsPerSecond, got.EtaSeconds)
	}
	c.update(engine.TableProgress{Table: ref("orders"), RowsDone: 14000, RowsTotal: 10000, Done: true})
	clock.advance(time.Second)
	got = c.live()
	if got.EtaSeconds != 0 || got.TablesDone != 2 || got.RowsDone != 15000 {
		t.Errorf("every table done: %+v", got)
	}

	// What is stored has the figures without the rates; a second call
	// without news stores nothing.
	stored := c.toStore()
	if stored == nil || stored.RowsPerSecond != 0 || stored.Tables[0].RowsPerSecond != 0 || stored.RowsDone != 15000 {
		t.Errorf("stored: %+v", stored)
	}
	if again := c.toStore(); again != nil {
		t.Errorf("stored again without a report: %+v", again)
	}
}

// A job of many tables lists those being copied (most recent first) and
// the largest not started, at most MaxListedTables of each.
func TestCopyProgressListIsCapped(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	c := newCopyTracker(clock.now)
	const n = 5000
	for i := range n {
		c.update(engine.TableProgress{Table: ref(fmt.Sprintf("t%04d", i)), RowsTotal: int64(i)})
	}
	// 30 tables get a chunk, one a second; 10 finish.
	for i := range 30 {
		clock.advance(time.Second)
		c.update(engine.TableProgress{Table: ref(fmt.Sprintf("t%04d", i)), RowsDone: 1, RowsTotal: int64(i), Done: i < 10})
	}
	got := c.live()
	if got.TablesTotal != n || got.TablesDone != 10 {
		t.Errorf("tables %d, done %d", got.TablesTotal, got.TablesDone)
	}
	if len(got.Tables) != 2*MaxListedTables {
		t.Fatalf("%d tables listed, want %d", len(got.Tables), 2*MaxListedTables)
	}
	// Copying: t0029 down to t0010; then the largest waiting: t4999 down.
	for i, tp := range got.Tables[:MaxListedTables] {
		if want := fmt.Sprintf("t%04d", 29-i); tp.Table != want || tp.Status != TableCopying {
			t.Errorf("listed %d: %s %s, want %s copying", i, tp.Table, tp.Status, want)
		}
	}
	for i, tp := range got.Tables[MaxListedTables:] {
		if want := fmt.Sprintf("t%04d", n-1-i); tp.Table != want || tp.Status != TableWaiting {
			t.Errorf("listed %d: %s %s, want %s waiting", MaxListedTables+i, tp.Table, tp.Status, want)
		}
	}
}

// Stored figures read while the copy does not run here have no rates, and
// an ETA only when the copy is done.
func TestStaleCopyProgress(t *testing.T) {
	c := &CopyProgress{RowsDone: 5, RowsTotal: 10, RowsPerSecond: 3, EtaSeconds: 2, TablesDone: 0, TablesTotal: 1,
		Tables: []TableProgress{{Table: "a", RowsPerSecond: 3, Status: TableCopying}}}
	s := c.stale()
	if s.RowsPerSecond != 0 || s.EtaSeconds != -1 || s.Tables[0].RowsPerSecond != 0 {
		t.Errorf("stale: %+v", s)
	}
	if c.Tables[0].RowsPerSecond != 3 {
		t.Error("stale changed the figures it was made from (they may be shared)")
	}
	c.TablesDone = 1
	if s := c.stale(); s.EtaSeconds != 0 {
		t.Errorf("a done copy's ETA: %d", s.EtaSeconds)
	}
}

// Reports of chunks committed at once by two workers may come in another
// order: the later, smaller one neither lowers the rows nor undoes done,
// and rows are not counted twice for the rate.
func TestCopyReportsOutOfOrder(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	c := newCopyTracker(clock.now)
	c.update(engine.TableProgress{Table: ref("orders"), RowsTotal: 3000})
	clock.advance(time.Second)
	c.update(engine.TableProgress{Table: ref("orders"), RowsDone: 3000, RowsTotal: 3000, Done: true})
	c.update(engine.TableProgress{Table: ref("orders"), RowsDone: 2000, RowsTotal: 3000})
	got := c.live()
	if got.RowsDone != 3000 || got.TablesDone != 1 || got.Tables[0].Status != TableDone || got.RowsPerSecond != 3000 || got.EtaSeconds != 0 {
		t.Errorf("after reports out of order: %+v", got)
	}
}

// The copy reports per chunk: an update must stay cheap, and a summary of
// a job of 20,000 tables (what DescribeMigrateJobs makes per poll) too.
func BenchmarkCopyTracker(b *testing.B) {
	const n = 20000
	refs := make([]engine.TableRef, n)
	c := newCopyTracker(time.Now)
	for i := range refs {
		refs[i] = ref(fmt.Sprintf("t%05d", i))
		c.update(engine.TableProgress{Table: refs[i], RowsTotal: int64(i * 100)})
	}
	b.Run("update", func(b *testing.B) {
		for i := range b.N {
			c.update(engine.TableProgress{Table: refs[i%n], RowsDone: int64(i), RowsTotal: int64(i%n) * 100})
		}
	})
	b.Run("summary", func(b *testing.B) {
		for range b.N {
			c.mu.Lock()
			c.summary(time.Now(), true)
			c.mu.Unlock()
		}
	})
}
