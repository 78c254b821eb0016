package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/jobs"
)

// testClock is a clock a test moves, safe for the service's goroutines.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitFor polls the job until ok says it is as wanted.
func (h *harness) waitFor(id, what string, ok func(*jobs.Job) bool) *jobs.Job {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		j := h.get(id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("job %s: %s never came; detail %+v, copy %+v", id, what, j.Detail, j.Detail.Copy)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServiceCopyProgress: a running job shows its tables' progress with
// live rates and an ETA; the figures are stored as the copy goes, so a
// job that ended, read again after a restart, still shows them (without
// rates).
func TestServiceCopyProgress(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	h := newHarness(t, func(c *jobs.Config) { c.Now = clock.Now })
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	orders := engine.TableRef{Database: "shop", Table: "orders"}
	users := engine.TableRef{Database: "shop", Table: "users"}
	gate := h.gate()
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, _ <-chan string) error {
		rep.Plan(twoSteps[:1])
		rep.StepStarted("dumper")
		rep.TableProgress(engine.TableProgress{Table: orders, RowsDone: 100, RowsTotal: 1100}) // 100 from an earlier run
		rep.TableProgress(engine.TableProgress{Table: users, RowsTotal: 10})
		clock.advance(2 * time.Second)
		rep.TableProgress(engine.TableProgress{Table: orders, RowsDone: 600, RowsTotal: 1100})
		rep.TableProgress(engine.TableProgress{Table: users, RowsDone: 10, RowsTotal: 10, Done: true})
		<-gate
		rep.TableProgress(engine.TableProgress{Table: orders, RowsDone: 1100, RowsTotal: 1100, Done: true})
		return nil
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := h.waitFor(id, "the second reports", func(j *jobs.Job) bool { return j.Detail.Copy != nil && j.Detail.Copy.RowsDone == 610 })
	c := j.Detail.Copy
	// 510 rows in 2 s; 500 left at 255 rows/s.
	if c.RowsTotal != 1110 || c.RowsPerSecond != 255 || c.EtaSeconds != 2 || c.TablesDone != 1 || c.TablesTotal != 2 {
		t.Errorf("running job's copy: %+v", c)
	}
	want := []jobs.TableProgress{
		{Database: "shop", Table: "orders", RowsDone: 600, RowsTotal: 1100, RowsPerSecond: 250, Status: jobs.TableCopying},
		{Database: "shop", Table: "users", RowsDone: 10, RowsTotal: 10, Status: jobs.TableDone},
	}
	if len(c.Tables) != 2 || c.Tables[0] != want[0] || c.Tables[1] != want[1] {
		t.Errorf("tables: %+v\nwant %+v", c.Tables, want)
	}

	// The store has the figures, without the rates.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stored, err := h.store.GetJobState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s := stored.Detail.Copy; s != nil && s.RowsDone == 610 {
			if s.RowsPerSecond != 0 || s.Tables[0].RowsPerSecond != 0 || s.Tables[0].RowsDone != 600 {
				t.Errorf("stored copy: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy's figures were not stored: %+v", stored.Detail.Copy)
		}
		time.Sleep(time.Millisecond)
	}

	close(gate)
	j = h.wait(id, jobs.StatusSuccess)
	if c := j.Detail.Copy; c == nil || c.RowsDone != 1110 || c.TablesDone != 2 || c.EtaSeconds != 0 || c.RowsPerSecond != 0 || c.Tables[0].Status != jobs.TableDone {
		t.Errorf("succeeded job's copy: %+v", c)
	}

	h.svc.Close()
	h.open()
	if c := h.get(id).Detail.Copy; c == nil || c.RowsDone != 1110 || c.TablesDone != 2 || len(c.Tables) != 2 {
		t.Errorf("after a restart: %+v", c)
	}
}

// A job stopped in the middle of its copy keeps its figures, with no rate
// and no ETA; a modified job starts again without them.
func TestServiceCopyProgressStopped(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, _ <-chan string) error {
		rep.Plan(twoSteps[:1])
		rep.StepStarted("dumper")
		rep.TableProgress(engine.TableProgress{Table: engine.TableRef{Database: "shop", Table: "orders"}, RowsTotal: 1000})
		rep.TableProgress(engine.TableProgress{Table: engine.TableRef{Database: "shop", Table: "orders"}, RowsDone: 400, RowsTotal: 1000})
		<-ctx.Done()
		return ctx.Err()
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.waitFor(id, "the copy's figures", func(j *jobs.Job) bool { return j.Detail.Copy != nil && j.Detail.Copy.RowsDone == 400 })
	if err := h.svc.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := h.wait(id, jobs.StatusFailed)
	if c := j.Detail.Copy; c == nil || c.RowsDone != 400 || c.RowsPerSecond != 0 || c.EtaSeconds != -1 || c.Tables[0].Status != jobs.TableCopying {
		t.Errorf("stopped job's copy: %+v", c)
	}
	if err := h.svc.Modify(ctx, id, func(j *jobs.Job) error { j.Name = "again"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c := h.get(id).Detail.Copy; c != nil {
		t.Errorf("modified job still shows its old copy: %+v", c)
	}
}
