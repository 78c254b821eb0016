package driver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// fake is a family whose units record their calls; each test sets what
// its stream does.
type fake struct {
	mu       sync.Mutex
	calls    []string
	phase    engine.Phase
	saved    []engine.Phase
	copyErr  error
	runs     []func(ctx context.Context, ctl *engine.StreamControl, s *fakeStream) error
	lag      engine.Lag
	verified map[string]engine.TableVerification
}

func (f *fake) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fake) Check(context.Context, engine.Spec, engine.CheckProgress) ([]engine.CheckItem, error) {
	return nil, nil
}

func (f *fake) Open(context.Context, engine.Spec) (engine.Migration, error) { return f, nil }

func (f *fake) LoadPhase(context.Context) (engine.Phase, error) { f.call("load"); return f.phase, nil }
func (f *fake) SavePhase(_ context.Context, p engine.Phase) error {
	f.phase = p
	f.saved = append(f.saved, p)
	return nil
}
func (f *fake) Forget(context.Context) error  { f.call("forget"); f.phase = engine.PhaseNew; return nil }
func (f *fake) Finish(context.Context) error  { f.call("finish"); return nil }
func (f *fake) Prepare(context.Context) error { f.call("prepare"); return nil }
func (f *fake) HoldReadOnly(context.Context) (func(), error) {
	f.call("hold")
	return func() { f.call("restore") }, nil
}
func (f *fake) RestoreReadOnly(context.Context) error { f.call("restore-done"); return nil }
func (f *fake) Structure(_ context.Context, p func(int, int)) error {
	f.call("structure")
	p(1, 2)
	p(2, 2)
	return nil
}
func (f *fake) Copy(_ context.Context, r engine.CopyReport) error {
	f.call("copy")
	r.Snapshotted()
	r.Table(engine.TableProgress{Table: engine.TableRef{Database: "d", Table: "a"}, RowsDone: 5, RowsTotal: 10})
	r.Copied(50)
	return f.copyErr
}
func (f *fake) Objects(_ context.Context, active bool) error {
	f.call("objects active=" + strconv.FormatBool(active))
	return nil
}
func (f *fake) FinalObjects(context.Context) error { f.call("final"); return nil }
func (f *fake) Retry() engine.RetryPolicy          { return engine.RetryPolicy{For: 1500 * time.Millisecond} }
func (f *fake) Close()                             { f.call("close") }
func (f *fake) OpenStream(context.Context) (engine.ChangeStream, error) {
	f.call("stream")
	return &fakeStream{f: f}, nil
}
func (f *fake) VerifyTables() []engine.TableRef {
	return []engine.TableRef{{Database: "d", Table: "a"}, {Database: "d", Table: "b"}}
}
func (f *fake) VerifyCount(_ context.Context, t engine.TableRef) (engine.TableVerification, error) {
	f.call("count " + t.String())
	return f.verified[t.Table], nil
}
func (f *fake) VerifyContent(_ context.Context, t engine.TableRef, pct int) (engine.TableVerification, error) {
	f.call("content " + t.String() + " " + strconv.Itoa(pct))
	return f.verified[t.Table], nil
}

type fakePos int

func (p fakePos) Before(o engine.Position) bool { return p < o.(fakePos) }
func (p fakePos) String() string                { return strconv.Itoa(int(p)) }

type fakeStream struct {
	f       *fake
	mu      sync.Mutex
	applied fakePos
	n       int
}

func (s *fakeStream) Run(ctx context.Context, ctl *engine.StreamControl) error {
	s.f.call("run")
	i := s.n
	s.n++
	if i < len(s.f.runs) {
		return s.f.runs[i](ctx, ctl, s)
	}
	return applyUntilStop(ctx, ctl, s)
}

// applyUntilStop applies a change every millisecond until told to stop.
func applyUntilStop(ctx context.Context, ctl *engine.StreamControl, s *fakeStream) error {
	for {
		s.mu.Lock()
		at := s.applied
		s.mu.Unlock()
		if ctl.ShouldStop(at) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		s.mu.Lock()
		s.applied++
		s.mu.Unlock()
	}
}

func (s *fakeStream) Applied() engine.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}
func (s *fakeStream) SourcePosition(context.Context) (engine.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied + 50, nil
}
func (s *fakeStream) Lag(context.Context) (engine.Lag, error) { return s.f.lag, nil }
func (s *fakeStream) Reconnect(context.Context) error         { s.f.call("reconnect"); return nil }
func (s *fakeStream) Close()                                  {}

type rec struct {
	mu       sync.Mutex
	steps    []string
	started  []string
	progress [][2]int
	caught   bool
	verified []engine.TableVerification
	tables   []engine.TableProgress
}

func (r *rec) Plan(s []engine.StepDef) {
	for _, st := range s {
		r.steps = append(r.steps, st.ID)
	}
}
func (r *rec) StepStarted(id string) { r.mu.Lock(); r.started = append(r.started, id); r.mu.Unlock() }
func (r *rec) Progress(o, c int) {
	r.mu.Lock()
	r.progress = append(r.progress, [2]int{o, c})
	r.mu.Unlock()
}
func (r *rec) Lag(int64, int64)                      {}
func (r *rec) CaughtUp()                             { r.mu.Lock(); r.caught = true; r.mu.Unlock() }
func (r *rec) Verified(v []engine.TableVerification) { r.verified = v }
func (r *rec) TableProgress(p engine.TableProgress) {
	r.mu.Lock()
	r.tables = append(r.tables, p)
	r.mu.Unlock()
}

func spec(t engine.MigrateType) engine.Spec {
	return engine.Spec{JobID: "dts-test", MigrateType: t, ConsistencyType: engine.ConsistencyNone}
}

func TestFullJobRunsEveryPhaseInOrder(t *testing.T) {
	f := &fake{phase: engine.PhaseCopy} // left by an earlier run: forgotten
	r := &rec{}
	s := spec(engine.MigrateFull)
	s.TargetReadOnly = true
	if err := Migrate(context.Background(), f, s, r, nil); err != nil {
		t.Fatal(err)
	}
	want := "forget load prepare hold structure copy objects active=true finish restore close"
	if got := strings.Join(f.calls, " "); got != want {
		t.Errorf("calls:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(r.steps, " "); got != "structure dumper loader objects" {
		t.Errorf("steps: %s", got)
	}
	if got := strings.Join(r.started, " "); got != "structure dumper loader objects" {
		t.Errorf("started: %s", got)
	}
	// Structure 0-5, the copy's 50 % at 50, the end at 100.
	for _, p := range [][2]int{{5, 100}, {50, 50}, {95, 100}, {97, 0}, {100, 100}} {
		found := false
		for _, q := range r.progress {
			found = found || q == p
		}
		if !found {
			t.Errorf("progress %v not reported: %v", p, r.progress)
		}
	}
	if got := f.saved; len(got) != 3 || got[2] != engine.PhaseDone {
		t.Errorf("phases saved: %v", got)
	}
	// A table's progress reaches the job service as the copy said it.
	want1 := engine.TableProgress{Table: engine.TableRef{Database: "d", Table: "a"}, RowsDone: 5, RowsTotal: 10}
	if len(r.tables) != 1 || r.tables[0] != want1 {
		t.Errorf("table progress: %+v, want %+v", r.tables, want1)
	}
}

func TestResumeSkipsPhasesDone(t *testing.T) {
	f := &fake{phase: engine.PhaseObjects}
	s := spec(engine.MigrateFull)
	s.Resume = true
	if err := Migrate(context.Background(), f, s, &rec{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "load prepare objects active=true finish close" {
		t.Errorf("calls: %s", got)
	}

	// A job found done only gives the target its read_only back.
	f = &fake{phase: engine.PhaseDone}
	s.TargetReadOnly = true
	if err := Migrate(context.Background(), f, s, &rec{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "load restore-done close" {
		t.Errorf("calls: %s", got)
	}
}

func TestStructureOnlyHasOneStep(t *testing.T) {
	f := &fake{}
	r := &rec{}
	s := spec(engine.MigrateStructure)
	s.ConsistencyType = engine.ConsistencyFull // no rows: nothing to verify
	if err := Migrate(context.Background(), f, s, r, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.steps, " "); got != "structure" {
		t.Errorf("steps: %s", got)
	}
	if got := strings.Join(f.calls, " "); got != "forget load prepare structure objects active=true finish close" {
		t.Errorf("calls: %s", got)
	}
}

func TestCopyFailureFailsTheJob(t *testing.T) {
	f := &fake{copyErr: errors.New("source gone")}
	err := Migrate(context.Background(), f, spec(engine.MigrateFull), &rec{}, nil)
	if err == nil || err.Error() != "source gone" {
		t.Fatalf("err = %v", err)
	}
	if f.phase != engine.PhaseCopy {
		t.Errorf("phase saved %q, want copy (resumed there)", f.phase)
	}
}

// waitForSync applies up to the source's position at the call; the job
// becomes ready by the lag rule; restarts after transient failures.
func TestIncrementalCompletes(t *testing.T) {
	f := &fake{lag: engine.Lag{Seconds: 0, Bytes: 100, Known: true}}
	f.runs = []func(context.Context, *engine.StreamControl, *fakeStream) error{
		func(context.Context, *engine.StreamControl, *fakeStream) error { return errors.New("connection reset") },
	}
	r := &rec{}
	complete := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Migrate(context.Background(), f, spec(engine.MigrateFullAndIncremental), r, complete) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		caught := r.caught
		r.mu.Unlock()
		if caught {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never caught up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	complete <- engine.CompleteWaitForSync
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Complete did not end the job")
	}
	got := strings.Join(f.calls, " ")
	if !strings.Contains(got, "stream run reconnect run final finish") {
		t.Errorf("calls: %s", got)
	}
	if !strings.Contains(got, "objects active=false") {
		t.Errorf("triggers must wait for the end: %s", got)
	}
	ready := false
	for _, p := range r.progress {
		ready = ready || p == [2]int{99, 100}
	}
	if !ready {
		t.Errorf("ready to complete did not show 99 %% with the sinker at 100 %%: %v", r.progress)
	}
}

// A lag that is not known, or above a second, never makes the job ready.
func TestReadyRule(t *testing.T) {
	for _, tt := range []struct {
		l    engine.Lag
		want bool
	}{
		{engine.Lag{Known: true}, true},
		{engine.Lag{Seconds: 1, Bytes: 15 << 20, Known: true}, true},
		{engine.Lag{Seconds: 2, Known: true}, false},
		{engine.Lag{Seconds: 0, Bytes: 16 << 20, Known: true}, false},
		{engine.Lag{Seconds: 0, Bytes: 10}, false},
	} {
		if got := tt.l.ReadyToComplete(); got != tt.want {
			t.Errorf("%+v ready = %v", tt.l, got)
		}
	}
}

// A stream that keeps failing without progress fails the job after the
// retry window; a permanent error at once.
func TestStreamFailures(t *testing.T) {
	f := &fake{}
	for i := 0; i < 10; i++ {
		f.runs = append(f.runs, func(context.Context, *engine.StreamControl, *fakeStream) error { return errors.New("refused") })
	}
	started := time.Now()
	err := Migrate(context.Background(), f, spec(engine.MigrateFullAndIncremental), &rec{}, nil)
	if err == nil || !strings.Contains(err.Error(), "made no progress") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(started); d < 1500*time.Millisecond || d > 8*time.Second {
		t.Errorf("failed after %s, want about the 1.5 s window", d)
	}

	f = &fake{}
	f.runs = append(f.runs, func(context.Context, *engine.StreamControl, *fakeStream) error {
		return engine.Permanent(errors.New("binlog purged"))
	})
	err = Migrate(context.Background(), f, spec(engine.MigrateFullAndIncremental), &rec{}, nil)
	if err == nil || err.Error() != "binlog purged" {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(strings.Join(f.calls, " "), "reconnect") {
		t.Error("a permanent error was retried")
	}
}

// Failures separated by healthy runs of the stream do not add up to the
// retry window, even when the position does not move (a quiet source).
func TestStreamFailuresAfterHealthyRuns(t *testing.T) {
	f := &fake{lag: engine.Lag{Known: true}}
	fail := func(context.Context, *engine.StreamControl, *fakeStream) error { return errors.New("connection reset") }
	healthyThenFail := func(ctx context.Context, _ *engine.StreamControl, _ *fakeStream) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(800 * time.Millisecond): // past half the 1.5 s window
		}
		return errors.New("connection reset")
	}
	f.runs = append(f.runs, fail, healthyThenFail, healthyThenFail, healthyThenFail)
	complete := make(chan string, 1)
	complete <- engine.CompleteWaitForSync
	if err := Migrate(context.Background(), f, spec(engine.MigrateFullAndIncremental), &rec{}, complete); err != nil {
		t.Fatalf("failed although every failure followed a healthy run: %v", err)
	}
	if got := strings.Count(strings.Join(f.calls, " "), "reconnect"); got != 4 {
		t.Errorf("%d reconnects, want 4", got)
	}
}

// ConsistencyType 3 samples by the parameters; differences fail the job
// naming the table.
func TestVerifySemantics(t *testing.T) {
	f := &fake{verified: map[string]engine.TableVerification{
		"b": {Database: "d", Table: "b", Differences: 1, FirstKeys: []string{"7"}},
	}}
	r := &rec{}
	s := spec(engine.MigrateFull)
	s.ConsistencyType = engine.ConsistencyDiffering // taken as full
	err := Migrate(context.Background(), f, s, r, nil)
	if err == nil || !strings.Contains(err.Error(), "`d`.`b` (first differing keys: 7)") {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(f.calls, " "); !strings.Contains(got, "content d.a 100 content d.b 100") {
		t.Errorf("calls: %s", got)
	}
	if len(r.verified) != 2 || r.steps[len(r.steps)-1] != "verify" {
		t.Errorf("verified %v, steps %v", r.verified, r.steps)
	}

	f = &fake{}
	s.ConsistencyType = engine.ConsistencySampled
	s.ConsistencyParams = engine.ConsistencyParams{TablesSelectAll: 0, TablesSelectCount: 100}
	if err := Migrate(context.Background(), f, s, &rec{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); !strings.Contains(got, "count d.a count d.b") {
		t.Errorf("calls: %s", got)
	}
}

// A fenced stream (another node owns the job) ends the run at once,
// without a restart, and so does a fenced Finish.
func TestFencedStreamIsNotRetried(t *testing.T) {
	f := &fake{}
	fenced := fmt.Errorf("commit refused: job j is now owned by epoch 6 (this run has epoch 5): %w", engine.ErrFenced)
	f.runs = append(f.runs, func(context.Context, *engine.StreamControl, *fakeStream) error { return fenced })
	started := time.Now()
	err := Migrate(context.Background(), f, spec(engine.MigrateFullAndIncremental), &rec{}, nil)
	if !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(strings.Join(f.calls, " "), "reconnect") || time.Since(started) > time.Second {
		t.Errorf("a fenced stream was retried: %v", f.calls)
	}
	attempts := 0
	err = engine.RetryPolicy{For: time.Minute}.Do(context.Background(), "x", func(error) bool { return true }, func() error {
		attempts++
		return fenced
	})
	if !errors.Is(err, engine.ErrFenced) || attempts != 1 {
		t.Errorf("RetryPolicy: %d attempts, err %v", attempts, err)
	}
}
