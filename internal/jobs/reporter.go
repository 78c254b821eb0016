package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// reporter records an engine's progress on the job.
type reporter struct {
	s  *Service
	id string
	// ctx carries the run's claim for every write.
	ctx context.Context

	// Progress and lag come often: the latest values wait here and are
	// saved at most every saveEvery, the last of them always.
	mu        sync.Mutex
	lastSave  time.Time
	flushing  bool
	progress  [2]int
	lag       [2]int64
	hasProg   bool
	hasLag    bool
	saveEvery time.Duration
	// copy keeps the tables' reports (copyprogress.go).
	copy *copyTracker
}

var _ engine.Reporter = (*reporter)(nil)

// newReporter reports for a run under claim (zero on a single node): its
// writes carry the claim even when they come after the run ended (a
// delayed flush), so they never land once another node owns the job.
func newReporter(s *Service, id string, claim Claim) *reporter {
	return &reporter{s: s, id: id, ctx: claimCtx(claim), saveEvery: 250 * time.Millisecond, copy: s.trackCopy(id)}
}

// Plan lays out the steps. A run that resumes the job keeps what the steps
// done before it say (a fresh start has cleared them): the driver skips
// those phases, so nothing else would mark them done again.
func (r *reporter) Plan(steps []engine.StepDef) {
	r.s.updateIn(r.ctx, r.id, func(j *Job) bool {
		done := map[string]Step{}
		for _, st := range j.Detail.Steps {
			if st.Status == StepSucceeded {
				done[st.ID] = st
			}
		}
		j.Detail.StepAll = len(steps)
		j.Detail.Steps = make([]Step, len(steps))
		for i, st := range steps {
			j.Detail.Steps[i] = Step{No: i + 1, ID: st.ID, Name: st.Name, Status: StepNotRun}
			if d, ok := done[st.ID]; ok {
				j.Detail.Steps[i].Status, j.Detail.Steps[i].StartTime = StepSucceeded, d.StartTime
			}
		}
		return true
	})
}

func (r *reporter) StepStarted(id string) {
	r.flush()
	now := r.s.now()
	r.s.updateIn(r.ctx, r.id, func(j *Job) bool {
		for i := range j.Detail.Steps {
			st := &j.Detail.Steps[i]
			if st.ID == id {
				st.Status, st.StartTime = StepRunning, now
				j.Detail.StepNow = st.No
				j.Detail.CurrentStepProgress = 0
			} else if st.Status == StepRunning {
				st.Status = StepSucceeded
			}
		}
		return true
	})
}

func (r *reporter) Progress(overall, current int) {
	r.mu.Lock()
	r.progress, r.hasProg = [2]int{clampPct(overall), clampPct(current)}, true
	r.mu.Unlock()
	r.schedule()
}

func (r *reporter) Lag(seconds, bytes int64) {
	r.mu.Lock()
	r.lag, r.hasLag = [2]int64{seconds, bytes}, true
	r.mu.Unlock()
	r.schedule()
}

// schedule saves now if the last save is old enough, or arranges one save
// for when it is.
func (r *reporter) schedule() {
	r.mu.Lock()
	wait := r.saveEvery - time.Since(r.lastSave)
	if r.flushing {
		r.mu.Unlock()
		return
	}
	if wait > 0 {
		r.flushing = true
		r.mu.Unlock()
		time.AfterFunc(wait, func() {
			r.mu.Lock()
			r.flushing = false
			r.mu.Unlock()
			r.flush()
		})
		return
	}
	r.mu.Unlock()
	r.flush()
}

// flush saves the pending progress and lag.
func (r *reporter) flush() {
	r.mu.Lock()
	prog, hasProg, lag, hasLag := r.progress, r.hasProg, r.lag, r.hasLag
	r.hasProg, r.hasLag = false, false
	r.lastSave = time.Now()
	r.mu.Unlock()
	copied := r.copy.toStore()
	if !hasProg && !hasLag && copied == nil {
		return
	}
	p := Progress{HasProgress: hasProg, HasLag: hasLag, Overall: prog[0], Current: prog[1], LagSeconds: lag[0], Copy: copied}
	if hasLag {
		p.LagMegabyte = (lag[1] + (1<<20 - 1)) >> 20
	}
	r.s.saveProgress(r.ctx, r.id, p)
}

func (r *reporter) Verified(tables []engine.TableVerification) {
	r.s.updateIn(r.ctx, r.id, func(j *Job) bool {
		j.Verification = verificationsOf(tables)
		return true
	})
}

func (r *reporter) CaughtUp() {
	r.flush()
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	_, err := r.s.transition(r.ctx, r.id, EventCaughtUp, nil)
	var se *StatusError
	switch {
	case err == nil:
		r.s.cfg.Logger.Info("caught up with the source: ready to complete", "job_id", r.id)
	case !errors.As(err, &se):
		r.s.logWriteErr("mark job ready to complete", r.id, err)
	}
}

func clampPct(p int) int {
	return max(0, min(100, p))
}
