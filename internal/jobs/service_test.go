package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
	"github.com/opendts/opendts/internal/store"
)

// harness is a jobs.Service on a real SQLite store in a temporary
// directory, with a fake engine the test drives.
type harness struct {
	t     *testing.T
	store *store.Store
	svc   *jobs.Service
	eng   *fakeEngine
	cfg   jobs.Config
}

func newHarness(t *testing.T, mutate ...func(*jobs.Config)) *harness {
	t.Helper()
	box, err := secret.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "opendts.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, store: st}
	h.cfg = jobs.Config{Store: st, Logger: slog.New(slog.NewTextHandler(newTestLog(t), nil))}
	for _, m := range mutate {
		m(&h.cfg)
	}
	h.open()
	return h
}

// open starts a service (again) on the harness's store, with a new fake
// engine, as a restart of opendts would.
func (h *harness) open() {
	h.eng = &fakeEngine{}
	cfg := h.cfg
	cfg.Engines = h.eng.registry()
	cfg.Migrate = migrateFunc
	h.svc = jobs.New(cfg)
	h.t.Cleanup(h.svc.Close)
}

// gate is a point a fake engine waits at until the test opens it. It is
// opened at the end of the test at the latest, before the service
// closes, so a forgotten one does not hang Close.
func (h *harness) gate() chan struct{} {
	ch := make(chan struct{})
	h.t.Cleanup(func() {
		select {
		case <-ch:
		default:
			close(ch)
		}
	})
	return ch
}

// newJob is a valid selected-objects job; db names what it migrates, so
// jobs with different names do not conflict.
func newJob(db string, migrateType engine.MigrateType) *jobs.Job {
	return &jobs.Job{
		Name:            "job " + db,
		Option:          jobs.MigrateOption{RunMode: 1, MigrateType: int(migrateType), MigrateObject: jobs.MigrateObjectSelected},
		SrcDatabaseType: "mysql",
		SrcAccessType:   "extranet",
		Src:             jobs.SrcInfo{Ip: "10.0.0.1", Port: 3306, User: "reader", Password: "src-pw"},
		DstDatabaseType: "mysql",
		DstAccessType:   "extranet",
		Dst:             jobs.DstInfo{Ip: "10.0.0.2", Port: 3306, User: "writer", Password: "dst-pw"},
		DatabaseInfo:    fmt.Sprintf(`[{"Database":%q}]`, db),
	}
}

func (h *harness) create(j *jobs.Job) string {
	h.t.Helper()
	id, err := h.svc.Create(context.Background(), j)
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
	return id
}

// checked creates a job and runs the (passing) check: it is at 4.
func (h *harness) checked(j *jobs.Job) string {
	h.t.Helper()
	id := h.create(j)
	if err := h.svc.Check(context.Background(), id); err != nil {
		h.t.Fatalf("check: %v", err)
	}
	h.wait(id, jobs.StatusCheckPassed)
	return id
}

func (h *harness) get(id string) *jobs.Job {
	h.t.Helper()
	j, err := h.svc.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return j
}

// wait polls the job until it reaches want.
func (h *harness) wait(id string, want jobs.Status) *jobs.Job {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		j, err := h.svc.Get(context.Background(), id)
		if err == nil && j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			if err != nil {
				h.t.Fatalf("job %s: %v; want status %s", id, err, want)
			}
			h.t.Fatalf("job %s at status %s, want %s (errors %v, check %+v)", id, j.Status, want, j.ErrorInfo, j.Check)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantStatusError(t *testing.T, err error, event jobs.Event) {
	t.Helper()
	var se *jobs.StatusError
	if !errors.As(err, &se) || se.Event != event {
		t.Fatalf("got %v, want a StatusError for %s", err, event)
	}
}

func TestServiceCreate(t *testing.T) {
	h := newHarness(t, func(c *jobs.Config) { c.MaxUnusedJobs = 2 })
	ctx := context.Background()
	id := h.create(newJob("shop", engine.MigrateFull))
	j := h.get(id)
	if !strings.HasPrefix(id, "dts-") || j.Status != jobs.StatusCreated || j.Check.Flag != jobs.CheckFlagNotChecked || j.Option.ConsistencyType != 1 {
		t.Fatalf("new job %s: %+v", id, j)
	}
	// Get is for showing a job: the passwords stay sealed in the store
	// (TestServiceStartSucceeds sees them reach the migration).
	if j.Src.Password != "" || j.Dst.Password != "" {
		t.Errorf("Get returned passwords: %q %q", j.Src.Password, j.Dst.Password)
	}

	bad := newJob("other", engine.MigrateFull)
	bad.Option.MigrateType = 4
	var inv *jobs.InvalidError
	if _, err := h.svc.Create(ctx, bad); !errors.As(err, &inv) || inv.Param != "MigrateOption.MigrateType" || !inv.Value {
		t.Errorf("MigrateType 4: %v", err)
	}

	// A second job on the same objects is created (it conflicts only
	// when both would run: TestServiceDuplicateAtStart).
	h.create(newJob("shop", engine.MigrateFull))
	if _, err := h.svc.Create(ctx, newJob("third", engine.MigrateFull)); !errors.Is(err, jobs.ErrTooManyUnused) {
		t.Errorf("a third unused job with MaxUnusedJobs 2: %v", err)
	}
	if _, err := h.svc.Get(ctx, "dts-nothere"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("get of an unknown id: %v", err)
	}
}

// TestServiceModifyByStatus: Modify is allowed at 1, 4, 5 and 10, takes
// the job back to 1 with its check cleared, and is refused while the job
// is checked or runs.
func TestServiceModifyByStatus(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	rename := func(name string) func(*jobs.Job) error {
		return func(j *jobs.Job) error { j.Name = name; return nil }
	}

	id := h.create(newJob("shop", engine.MigrateFull))
	if err := h.svc.Modify(ctx, id, rename("at 1")); err != nil {
		t.Fatalf("modify at 1: %v", err)
	}

	id = h.checked(newJob("passed", engine.MigrateFull))
	if err := h.svc.Modify(ctx, id, rename("at 4")); err != nil {
		t.Fatalf("modify at 4: %v", err)
	}
	if j := h.get(id); j.Status != jobs.StatusCreated || j.Name != "at 4" || j.Check.Flag != jobs.CheckFlagNotChecked || len(j.Check.Items) != 0 {
		t.Errorf("modified at 4: status %s, name %q, check %+v; want 1, the new name, the check cleared", j.Status, j.Name, j.Check)
	}
	if err := h.svc.Start(ctx, id); err == nil {
		t.Error("a modified job started without a new check")
	} else {
		wantStatusError(t, err, jobs.EventStart)
	}

	if err := h.svc.Modify(ctx, id, func(j *jobs.Job) error { j.SrcDatabaseType = "mariadb"; return nil }); err == nil {
		t.Error("the source database type changed")
	} else if inv := new(jobs.InvalidError); !errors.As(err, &inv) || inv.Param != "SrcDatabaseType" {
		t.Errorf("changing the source type: %v", err)
	}
	applyErr := errors.New("bad parameter")
	if err := h.svc.Modify(ctx, id, func(*jobs.Job) error { return applyErr }); !errors.Is(err, applyErr) {
		t.Errorf("apply's error: %v", err)
	}

	// Checking (3) and running (7): refused, the job untouched.
	checking := h.gate()
	h.eng.setCheck(func(ctx context.Context, _ engine.Spec, _ engine.CheckProgress) ([]engine.CheckItem, error) {
		<-checking
		return nil, nil
	})
	if err := h.svc.Check(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantStatusError(t, h.svc.Modify(ctx, id, rename("at 3")), jobs.EventModify)
	close(checking)
	h.wait(id, jobs.StatusCheckPassed)

	running := h.gate()
	h.eng.setMigrate(func(ctx context.Context, _ engine.Spec, _ engine.Reporter, _ <-chan string) error {
		<-running
		return errors.New("the copy broke")
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusRunning)
	wantStatusError(t, h.svc.Modify(ctx, id, rename("at 7")), jobs.EventModify)
	close(running)
	h.wait(id, jobs.StatusFailed)
	if err := h.svc.Modify(ctx, id, rename("at 10")); err != nil {
		t.Fatalf("modify at 10: %v", err)
	}
	if j := h.get(id); j.Status != jobs.StatusCreated || len(j.ErrorInfo) != 0 || !j.StartTime.IsZero() {
		t.Errorf("modified at 10: status %s, errors %v, start %v; want 1 with the last run forgotten", j.Status, j.ErrorInfo, j.StartTime)
	}
	if got := h.get(id).Name; got != "at 10" {
		t.Errorf("name %q", got)
	}
}

// TestServiceCheck: a passing check leads to 4, a failing one to 5 with
// the failed items and their advice in the message, a check that cannot
// run to 5 with the reason, progress shows while it runs.
func TestServiceCheck(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()

	gate := h.gate()
	h.eng.setCheck(func(ctx context.Context, _ engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
		progress(1, 2)
		<-gate
		progress(2, 2)
		return []engine.CheckItem{
			{Name: "ConnectDBCheck", Result: engine.ResultPass, Message: "connected"},
			{Name: "PrimaryKeyCheck", Result: engine.ResultWarning, Message: "shop.log has no key", Advice: "add one"},
		}, nil
	})
	id := h.create(newJob("shop", engine.MigrateFull))
	if err := h.svc.Check(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for j := h.get(id); j.Check.Progress != 50; j = h.get(id) {
		if time.Now().After(deadline) {
			t.Fatalf("check progress %d, status %q; want 50 while it runs", j.Check.Progress, j.Check.Status)
		}
		time.Sleep(time.Millisecond)
	}
	if j := h.get(id); j.Status != jobs.StatusChecking || j.Check.Status != jobs.CheckRunning {
		t.Errorf("running check: status %s, check %q", j.Status, j.Check.Status)
	}
	wantStatusError(t, h.svc.Check(ctx, id), jobs.EventCheck)
	close(gate)
	j := h.wait(id, jobs.StatusCheckPassed)
	if j.Check.Flag != jobs.CheckFlagPassed || j.Check.Status != jobs.CheckFinished || j.Check.Progress != 100 || len(j.Check.Items) != 2 {
		t.Errorf("passed check: %+v", j.Check)
	}

	h.eng.setCheck(func(context.Context, engine.Spec, engine.CheckProgress) ([]engine.CheckItem, error) {
		return []engine.CheckItem{{Name: "SrcPrivilegeCheck", Result: engine.ResultFail, Message: "reader lacks SELECT on shop", Advice: "GRANT SELECT ON shop.* TO reader"}}, nil
	})
	if err := h.svc.Check(ctx, id); err != nil {
		t.Fatal(err)
	}
	j = h.wait(id, jobs.StatusCheckFailed)
	if j.Check.Flag != jobs.CheckFlagFailed || !strings.Contains(j.Check.Message, "reader lacks SELECT") || !strings.Contains(j.Check.Message, "GRANT SELECT ON shop.*") {
		t.Errorf("failed check: %+v", j.Check)
	}
	wantStatusError(t, h.svc.Start(ctx, id), jobs.EventStart)

	h.eng.setCheck(func(context.Context, engine.Spec, engine.CheckProgress) ([]engine.CheckItem, error) {
		return nil, errors.New("dial tcp 10.0.0.1:3306: connection refused")
	})
	if err := h.svc.Check(ctx, id); err != nil {
		t.Fatal(err)
	}
	j = h.wait(id, jobs.StatusCheckFailed)
	if len(j.Check.Items) != 1 || j.Check.Items[0].Name != "CheckRun" || !strings.Contains(j.Check.Items[0].Message, "connection refused") {
		t.Errorf("a check that could not run: %+v", j.Check.Items)
	}

	// A family with no engine fails its check, it does not error.
	pg := newJob("pg", engine.MigrateFull)
	pg.SrcDatabaseType, pg.DstDatabaseType = "postgresql", "postgresql"
	pgID := h.create(pg)
	if err := h.svc.Check(ctx, pgID); err != nil {
		t.Fatal(err)
	}
	j = h.wait(pgID, jobs.StatusCheckFailed)
	if len(j.Check.Items) != 1 || j.Check.Items[0].Name != "EngineSupportCheck" {
		t.Errorf("postgresql check: %+v", j.Check.Items)
	}
	if _, err := h.svc.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Check(ctx, "dts-nothere"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("check of an unknown id: %v", err)
	}
}

// TestServiceStartSucceeds: 4 → 7 while the engine runs, with its steps
// and progress on the job, → 9 when it returns nil.
func TestServiceStartSucceeds(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	gate := h.gate()
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, _ <-chan string) error {
		rep.Plan(twoSteps[:1])
		rep.StepStarted("dumper")
		rep.Progress(40, 40)
		<-gate
		return nil
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := h.wait(id, jobs.StatusRunning)
	deadline := time.Now().Add(5 * time.Second)
	for j.Detail.Progress != 40 || j.Detail.StepNow != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("running job's detail %+v; want step 1 at 40%%", j.Detail)
		}
		time.Sleep(time.Millisecond)
		j = h.get(id)
	}
	if j.StartTime.IsZero() || j.Detail.Steps[0].Status != jobs.StepRunning {
		t.Errorf("running job: start %v, steps %+v", j.StartTime, j.Detail.Steps)
	}
	wantStatusError(t, h.svc.Start(ctx, id), jobs.EventStart)
	wantStatusError(t, h.svc.Complete(ctx, id, engine.CompleteWaitForSync), jobs.EventComplete)
	close(gate)
	j = h.wait(id, jobs.StatusSuccess)
	if j.Detail.Progress != 100 || j.Detail.Steps[0].Status != jobs.StepSucceeded || j.EndTime.IsZero() || len(j.ErrorInfo) != 0 {
		t.Errorf("succeeded job: %+v, end %v, errors %v", j.Detail, j.EndTime, j.ErrorInfo)
	}
	// /metrics keeps showing how the job ended.
	st, err := h.svc.Stats(ctx)
	if p, ok := st.Running[id]; err != nil || !ok || !p.Ended() || p.Overall != 100 {
		t.Errorf("stats of the job that ended: %+v (%v)", st.Running, err)
	}
	specs := h.eng.migrations()
	if len(specs) != 1 || specs[0].JobID != id || specs[0].Resume || specs[0].Source.Password != "src-pw" ||
		len(specs[0].Objects) != 1 || specs[0].Objects[0].Database != "shop" {
		t.Errorf("engine got %+v", specs)
	}
}

func TestServiceStartFails(t *testing.T) {
	h := newHarness(t)
	id := h.checked(newJob("shop", engine.MigrateFull))
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, _ <-chan string) error {
		rep.Plan(twoSteps)
		rep.StepStarted("dumper")
		return errors.New("copy shop.orders: Lost connection to server")
	})
	if err := h.svc.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	j := h.wait(id, jobs.StatusFailed)
	if len(j.ErrorInfo) != 1 || !strings.Contains(j.ErrorInfo[0].ErrorLog, "Lost connection") || !strings.HasPrefix(j.ErrorInfo[0].ErrorLog, "FailedOperation.MigrateFailed") {
		t.Errorf("errors %+v", j.ErrorInfo)
	}
	if j.Detail.Steps[0].Status != jobs.StepFailed || j.Detail.Steps[1].Status != jobs.StepNotRun {
		t.Errorf("steps %+v; want the running one failed, the next not run", j.Detail.Steps)
	}
}

// TestServiceFullIncremental: a full + incremental job reaches 8 when the
// engine says it caught up, Complete takes it to 12 and hands the mode
// to the engine, and it ends at 9.
func TestServiceFullIncremental(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFullAndIncremental))
	got := make(chan string, 1)
	applied := h.gate()
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, complete <-chan string) error {
		rep.Plan(twoSteps)
		rep.StepStarted("dumper")
		rep.StepStarted("sinker")
		rep.Lag(1, 3<<20)
		rep.CaughtUp()
		select {
		case mode := <-complete:
			got <- mode
		case <-ctx.Done():
			return ctx.Err()
		}
		<-applied
		return nil
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := h.wait(id, jobs.StatusReadyComplete)
	if j.Detail.SecondsBehindMaster != 1 || j.Detail.MasterSlaveDistance != 3 {
		t.Errorf("lag at 8: %d s, %d MB; want 1 s, 3 MB", j.Detail.SecondsBehindMaster, j.Detail.MasterSlaveDistance)
	}
	if err := h.svc.Complete(ctx, id, engine.CompleteImmediately); err != nil {
		t.Fatal(err)
	}
	if mode := <-got; mode != engine.CompleteImmediately {
		t.Errorf("engine was told %q", mode)
	}
	h.wait(id, jobs.StatusCompleting)
	wantStatusError(t, h.svc.Complete(ctx, id, engine.CompleteWaitForSync), jobs.EventComplete)
	wantStatusError(t, h.svc.Stop(ctx, id), jobs.EventStop)
	close(applied)
	j = h.wait(id, jobs.StatusSuccess)
	if j.Detail.Steps[0].Status != jobs.StepSucceeded || j.Detail.Steps[1].Status != jobs.StepSucceeded {
		t.Errorf("steps %+v", j.Detail.Steps)
	}
}

// blockUntilCancelled is a migration that says it started (entered, if
// not nil), runs until its context ends, then waits for the gate (so the
// test sees 11) and returns the context's error, as an engine stopped
// mid-copy does.
func blockUntilCancelled(entered chan<- struct{}, gate <-chan struct{}) func(context.Context, engine.Spec, engine.Reporter, <-chan string) error {
	return func(ctx context.Context, _ engine.Spec, rep engine.Reporter, _ <-chan string) error {
		rep.Plan(twoSteps)
		rep.StepStarted("dumper")
		if entered != nil {
			close(entered)
		}
		<-ctx.Done()
		if gate != nil {
			<-gate
		}
		return ctx.Err()
	}
}

// TestServiceDuplicateAtStart: two jobs writing the same objects into the
// same target may both exist; the second cannot start while the first
// runs, and can once it has ended.
func TestServiceDuplicateAtStart(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	entered := make(chan struct{})
	h.eng.setMigrate(blockUntilCancelled(entered, nil))
	first := h.checked(newJob("shop", engine.MigrateFull))
	second := h.checked(newJob("shop", engine.MigrateFull))
	if err := h.svc.Start(ctx, first); err != nil {
		t.Fatal(err)
	}
	<-entered
	var dup *jobs.DuplicateError
	if err := h.svc.Start(ctx, second); !errors.As(err, &dup) || dup.Other != first {
		t.Fatalf("start of an overlapping job while the first runs: %v", err)
	}
	if err := h.svc.Stop(ctx, first); err != nil {
		t.Fatal(err)
	}
	h.wait(first, jobs.StatusFailed)
	h.eng.setMigrate(nil)
	if err := h.svc.Start(ctx, second); err != nil {
		t.Fatalf("start once the first has ended: %v", err)
	}
	h.wait(second, jobs.StatusSuccess)
}

// TestServiceStopRunning: Stop at 7 cancels the engine, the job shows 11
// until the engine returns, then ends at 10 as stopped.
func TestServiceStopRunning(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	gate := h.gate()
	entered := make(chan struct{})
	h.eng.setMigrate(blockUntilCancelled(entered, gate))
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusRunning)
	<-entered // a Stop before this ends at 10 at once: TestServiceStopRightAfterStart
	if err := h.svc.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusStopping)
	wantStatusError(t, h.svc.Stop(ctx, id), jobs.EventStop)
	wantStatusError(t, h.svc.Delete(ctx, id), jobs.EventDelete)
	close(gate)
	j := h.wait(id, jobs.StatusFailed)
	if len(j.ErrorInfo) != 1 || !strings.Contains(j.ErrorInfo[0].ErrorLog, "stopped by StopMigrateJob") || j.Detail.Steps[0].Status != jobs.StepFailed {
		t.Errorf("stopped job: errors %v, steps %+v", j.ErrorInfo, j.Detail.Steps)
	}
}

// TestServiceStopReadyComplete: Stop at 8 ends a full + incremental job
// at 10, even when the engine returns nil as it stops.
func TestServiceStopReadyComplete(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFullAndIncremental))
	h.eng.setMigrate(func(ctx context.Context, _ engine.Spec, rep engine.Reporter, _ <-chan string) error {
		rep.CaughtUp()
		<-ctx.Done()
		return ctx.Err()
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusReadyComplete)
	if err := h.svc.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusFailed)
}

// TestServiceScheduled: RunMode 2 waits at 6 for ExpectTime; Stop there
// ends the job at 10 and the engine never runs; Delete there ends the
// wait; an ExpectTime already past starts at once.
func TestServiceScheduled(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	later := time.Now().Add(time.Hour).Format(jobs.ExpectTimeLayout)
	scheduled := func(db, at string) string {
		j := newJob(db, engine.MigrateFull)
		j.Option.RunMode, j.Option.ExpectTime = 2, at
		id := h.checked(j)
		if err := h.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}

	stopped := scheduled("stopped", later)
	h.wait(stopped, jobs.StatusReadyRun)
	if err := h.svc.Stop(ctx, stopped); err != nil {
		t.Fatal(err)
	}
	j := h.wait(stopped, jobs.StatusFailed)
	if len(j.ErrorInfo) != 1 || !strings.Contains(j.ErrorInfo[0].ErrorLog, "stopped") {
		t.Errorf("stopped scheduled job: %v", j.ErrorInfo)
	}

	deleted := scheduled("deleted", later)
	h.wait(deleted, jobs.StatusReadyRun)
	if err := h.svc.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Get(ctx, deleted); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deleted job: %v", err)
	}

	now := scheduled("now", time.Now().Add(-time.Minute).Format(jobs.ExpectTimeLayout))
	h.wait(now, jobs.StatusSuccess)
	if n := len(h.eng.migrations()); n != 1 {
		t.Errorf("engine ran %d migrations; want 1 (the one whose time had come)", n)
	}
}

// TestServicePanic: a panic in the engine fails the job (check or
// migration) with an internal error, and the service goes on.
func TestServicePanic(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	h.eng.setMigrate(func(context.Context, engine.Spec, engine.Reporter, <-chan string) error {
		var m map[string]int
		m["boom"]++ // a nil map: the kind of bug an engine has
		return nil
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := h.wait(id, jobs.StatusFailed)
	if len(j.ErrorInfo) != 1 || !strings.HasPrefix(j.ErrorInfo[0].ErrorLog, "InternalError") || strings.Contains(j.ErrorInfo[0].ErrorLog, "nil map") {
		t.Errorf("panicked migration: %v; want an internal error, the panic in the log only", j.ErrorInfo)
	}

	h.eng.setCheck(func(context.Context, engine.Spec, engine.CheckProgress) ([]engine.CheckItem, error) {
		panic("check bug")
	})
	other := h.create(newJob("other", engine.MigrateFull))
	if err := h.svc.Check(ctx, other); err != nil {
		t.Fatal(err)
	}
	j = h.wait(other, jobs.StatusCheckFailed)
	if j.Check.Flag != jobs.CheckFlagFailed || j.Check.Status != jobs.CheckFinished {
		t.Errorf("panicked check: %+v", j.Check)
	}

	h.eng.setCheck(nil)
	h.eng.setMigrate(nil)
	third := h.checked(newJob("third", engine.MigrateFull))
	if err := h.svc.Start(ctx, third); err != nil {
		t.Fatal(err)
	}
	h.wait(third, jobs.StatusSuccess)
}

// TestServiceResume: Close leaves running jobs at their status; a new
// service's Resume continues migrations with Resume set (those being
// completed with waitForSync), checks again the jobs being checked,
// re-arms scheduled starts and ends stopping jobs as stopped.
func TestServiceResume(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()

	running := h.checked(newJob("running", engine.MigrateFull))
	ready := h.checked(newJob("ready", engine.MigrateFullAndIncremental))
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, _ <-chan string) error {
		if spec.MigrateType == engine.MigrateFullAndIncremental {
			rep.Plan(twoSteps)
			rep.StepStarted("dumper")
			rep.StepStarted("sinker")
			rep.CaughtUp()
		}
		<-ctx.Done()
		return ctx.Err()
	})
	for _, id := range []string{running, ready} {
		if err := h.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	h.wait(running, jobs.StatusRunning)
	h.wait(ready, jobs.StatusReadyComplete)

	checking := h.create(newJob("checking", engine.MigrateFull))
	inCheck := make(chan struct{})
	h.eng.setCheck(func(ctx context.Context, _ engine.Spec, _ engine.CheckProgress) ([]engine.CheckItem, error) {
		close(inCheck)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err := h.svc.Check(ctx, checking); err != nil {
		t.Fatal(err)
	}
	<-inCheck // the next setCheck must not reach this check

	sched := newJob("scheduled", engine.MigrateFull)
	sched.Option.RunMode, sched.Option.ExpectTime = 2, time.Now().Add(time.Hour).Format(jobs.ExpectTimeLayout)
	h.eng.setCheck(nil)
	scheduled := h.checked(sched)
	if err := h.svc.Start(ctx, scheduled); err != nil {
		t.Fatal(err)
	}
	h.wait(scheduled, jobs.StatusReadyRun)

	// Two statuses only a crash leaves behind: 11 (the process died while
	// an engine stopped) and 12 (while it completed).
	stopping := h.create(newJob("stopping", engine.MigrateFull))
	completing := h.create(newJob("completing", engine.MigrateFullAndIncremental))
	for id, st := range map[string]jobs.Status{stopping: jobs.StatusStopping, completing: jobs.StatusCompleting} {
		j := h.get(id)
		j.Status = st
		if err := h.store.UpdateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}

	h.svc.Close()
	for id, st := range map[string]jobs.Status{running: jobs.StatusRunning, ready: jobs.StatusReadyComplete, checking: jobs.StatusChecking, scheduled: jobs.StatusReadyRun} {
		if got := h.get(id).Status; got != st {
			t.Errorf("after Close, job %s at %s; want it kept at %s", id, got, st)
		}
	}
	if err := h.svc.Check(ctx, h.create(newJob("late", engine.MigrateFull))); !errors.Is(err, jobs.ErrShuttingDown) {
		t.Errorf("Check after Close: %v; want ErrShuttingDown", err)
	}

	// The restart.
	h.open()
	modes := make(chan string, 1)
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, complete <-chan string) error {
		switch spec.JobID {
		case running:
			return nil
		case ready:
			// A resumed run skips the copy: its step stays done.
			rep.Plan(twoSteps)
			rep.StepStarted("sinker")
			rep.CaughtUp()
			select {
			case <-complete:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		case completing:
			modes <- <-complete
			return nil
		}
		return fmt.Errorf("job %s was not to run", spec.JobID)
	})
	if err := h.svc.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	h.wait(running, jobs.StatusSuccess)
	h.wait(checking, jobs.StatusCheckPassed)
	h.wait(stopping, jobs.StatusFailed)
	h.wait(completing, jobs.StatusSuccess)
	if mode := <-modes; mode != engine.CompleteWaitForSync {
		t.Errorf("a completing job resumed with mode %q", mode)
	}
	if st := h.wait(ready, jobs.StatusReadyComplete).Detail.Steps; len(st) != 2 || st[0].Status != jobs.StepSucceeded || st[1].Status != jobs.StepRunning {
		t.Errorf("resumed job's steps: %+v; want the copy done, the sinker running", st)
	}
	if got := h.get(scheduled).Status; got != jobs.StatusReadyRun {
		t.Errorf("scheduled job at %s after Resume; want 6 until its time", got)
	}
	for _, spec := range h.eng.migrations() {
		if !spec.Resume {
			t.Errorf("job %s resumed without Spec.Resume", spec.JobID)
		}
	}
	if n := len(h.eng.migrations()); n != 3 {
		t.Errorf("%d migrations resumed; want 3 (running, ready, completing)", n)
	}
	if n := h.eng.checkCount(); n != 1 {
		t.Errorf("%d checks after the restart; want 1", n)
	}
	// The job at 8 can be completed by the new service.
	if err := h.svc.Complete(ctx, ready, engine.CompleteWaitForSync); err != nil {
		t.Fatal(err)
	}
	h.wait(ready, jobs.StatusSuccess)
	if err := h.svc.Stop(ctx, scheduled); err != nil {
		t.Fatal(err)
	}
	h.wait(scheduled, jobs.StatusFailed)
}

// TestServiceDelete: refused while work is in flight (3, 7, 8, 11, 12),
// the job untouched; allowed at rest.
func TestServiceDelete(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	gate := h.gate()
	h.eng.setMigrate(func(ctx context.Context, _ engine.Spec, _ engine.Reporter, _ <-chan string) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusRunning)
	wantStatusError(t, h.svc.Delete(ctx, id), jobs.EventDelete)
	if got := h.get(id).Status; got != jobs.StatusRunning {
		t.Errorf("a refused Delete moved the job to %s", got)
	}
	close(gate)
	h.wait(id, jobs.StatusSuccess)
	if err := h.svc.Delete(ctx, id); err != nil {
		t.Fatalf("delete at 9: %v", err)
	}
	if _, err := h.svc.Get(ctx, id); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deleted job: %v", err)
	}
	if err := h.svc.Delete(ctx, id); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// TestServiceStopRacesSuccess: an engine that finishes its copy as Stop
// comes returns nil; what happened wins, the job ends at 9, not stuck at
// 11.
func TestServiceStopRacesSuccess(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	gate := h.gate()
	entered := make(chan struct{})
	h.eng.setMigrate(func(ctx context.Context, _ engine.Spec, _ engine.Reporter, _ <-chan string) error {
		close(entered)
		<-ctx.Done()
		<-gate
		return nil // the last chunk committed before the cancel was seen
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := h.svc.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusStopping)
	close(gate)
	h.wait(id, jobs.StatusSuccess)
}

// TestServiceStopRightAfterStart: a Stop that comes before the run has
// even read its job still ends the job at 10. The window is short, so
// the test tries it a few times.
func TestServiceStopRightAfterStart(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.eng.setMigrate(blockUntilCancelled(nil, nil))
	for i := range 10 {
		id := h.checked(newJob(fmt.Sprint("db", i), engine.MigrateFull))
		if err := h.svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
		h.wait(id, jobs.StatusFailed)
	}
}

// testLog sends the service's log to the test's, shown on failure. A
// reporter's delayed save can log after the test ended, when t.Log
// panics: those lines are dropped.
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestLog(t *testing.T) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
