package jobs

import (
	"context"
	"errors"

	"github.com/opendts/opendts/internal/engine"
)

// Cluster is what a Service needs from the node it runs on in cluster
// mode. The node claims jobs that need work (a check, a scheduled or
// running migration, a stop or completion in progress) and hands each to
// Adopt; it tells the service when a stored job changed (Changed) and when
// its lease, and with it every claim, is lost (Abandon).
type Cluster interface {
	// Wake asks the node to look for jobs that need an owner now.
	Wake()
	// Owner names the node whose claim holds job id ("" when none).
	Owner(id string) string
	// Release ends claim c on job id: its work on this node is over.
	Release(id string, c Claim)
	// LockTarget holds a cluster-wide lock named after a target instance
	// until unlock is called: starts into one target are compared with
	// the other jobs one at a time across the nodes.
	LockTarget(ctx context.Context, target string) (unlock func(), err error)
}

// runCtx is the context of a store write made for id's run: it carries the
// run's claim in cluster mode, so that the store refuses it once another
// node owns the job. The lock must be held.
func (s *Service) runCtx(id string) context.Context {
	if r := s.runs[id]; r != nil {
		return claimCtx(r.claim)
	}
	return context.Background()
}

// claimCtx is the context of writes made under claim c (none when zero).
func claimCtx(c Claim) context.Context {
	if c.Epoch != 0 {
		return WithClaim(context.Background(), c)
	}
	return context.Background()
}

// logWriteErr logs a failed write of a run. A job deleted meanwhile is
// not an error (nothing is left to report), nor is a job another node took
// over (its new owner reports it now).
func (s *Service) logWriteErr(what, id string, err error) {
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
	case errors.Is(err, ErrNotOwner):
		s.cfg.Logger.Info(what+": skipped, another node owns the job now", "job_id", id)
	default:
		s.cfg.Logger.Error(what, "job_id", id, "err", err)
	}
}

// markOwner sets the node that owns a shown job's work.
func (s *Service) markOwner(j *Job) {
	if s.cfg.Cluster != nil {
		j.Node = s.cfg.Cluster.Owner(j.ID)
	}
}

func completeModeOf(j *Job) string {
	if j.CompleteMode == "" {
		return engine.CompleteWaitForSync
	}
	return j.CompleteMode
}

// Adopt starts on this node the work job id needs, under the node's fresh
// claim c: a check runs (again), a scheduled start is armed, a migration
// runs (resuming from its checkpoints once it has planned its steps), a
// completion goes on, a stop is recorded. It reports false when there is
// nothing to run here (the job is no longer active, or this node still
// runs it): the caller releases the claim.
func (s *Service) Adopt(ctx context.Context, id string, c Claim) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false, ErrShuttingDown
	}
	if s.runs[id] != nil {
		return false, nil
	}
	j, err := s.cfg.Store.GetJobState(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storeErr("get job", err)
	}
	owned := WithClaim(ctx, c)
	switch j.Status {
	case StatusChecking:
		s.cfg.Logger.Info("claimed job: checking it", "job_id", id, "epoch", c.Epoch)
		_, err := s.readModifyWrite(owned, id, func(j *Job) (bool, error) {
			if j.Status != StatusChecking {
				return false, errNoWork
			}
			j.Check = CheckResult{Status: CheckStarting, Flag: CheckFlagNotChecked, StartTime: s.now()}
			return true, nil
		})
		if err != nil {
			return false, noWork(err)
		}
		return true, s.startRun(id, c, func(ctx context.Context, _ *run) { s.runCheck(ctx, id) })
	case StatusReadyRun:
		s.cfg.Logger.Info("claimed job: waiting for its start time", "job_id", id, "epoch", c.Epoch, "expect_time", j.Option.ExpectTime)
		return true, s.schedule(id, j.Option.ExpectTime, c)
	case StatusRunning, StatusReadyComplete, StatusCompleting:
		// A run that planned its steps has passed the point where a
		// fresh start clears the target's checkpoints: later runs
		// resume from them.
		resume := len(j.Detail.Steps) > 0
		completing, mode := j.Status == StatusCompleting, completeModeOf(j)
		s.cfg.Logger.Info("claimed job: running its migration", "job_id", id, "epoch", c.Epoch, "status", int(j.Status), "resume", resume)
		return true, s.startRun(id, c, func(ctx context.Context, r *run) {
			if completing {
				r.complete <- mode
			}
			s.runMigration(ctx, id, r, resume)
		})
	case StatusStopping:
		_, err := s.transition(owned, id, EventStopped, func(j *Job) {
			j.EndTime = s.now()
			j.ErrorInfo = []ErrorInfo{{ErrorLog: "FailedOperation.Stopped: the migration was stopped by StopMigrateJob"}}
			markRunningStep(j, StepFailed)
		})
		return false, noWork(err)
	}
	return false, nil
}

var errNoWork = errors.New("no work")

// noWork drops the errors that only mean another node or action got there
// first.
func noWork(err error) error {
	var se *StatusError
	if err == nil || errors.Is(err, errNoWork) || errors.Is(err, ErrNotOwner) || errors.Is(err, ErrNotFound) || errors.As(err, &se) {
		return nil
	}
	return err
}

// Changed tells the service that job id changed in the store, maybe on
// another node: the run of an owned job follows it (a stop, a completion,
// a deletion, an end recorded elsewhere).
func (s *Service) Changed(ctx context.Context, id string) {
	s.mu.Lock()
	r := s.runs[id]
	s.mu.Unlock()
	if r == nil {
		return
	}
	j, err := s.cfg.Store.GetJobState(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[id] != r {
		return
	}
	switch {
	case j == nil:
		r.cancel()
	case j.Status == StatusStopping:
		if !r.stopping {
			s.cfg.Logger.Info("stopping the job: StopMigrateJob came through another node", "job_id", id)
		}
		r.stopping = true
		r.cancel()
	case j.Status == StatusCompleting:
		select {
		case r.complete <- completeModeOf(j):
		default:
		}
	case !j.Status.active():
		r.cancel()
	}
}

// Abandon stops every run of this node without recording anything: the
// node lost its claims (its etcd lease expired), and the jobs' new owners
// carry them on. The runs' writes already carry claims the store now
// refuses.
func (s *Service) Abandon() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runs {
		r.cancel()
	}
	return len(s.runs)
}

// HasRun reports whether job id has work running on this node.
func (s *Service) HasRun(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id] != nil
}

// Running counts the jobs with work on this node.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.runs)
}

// ActiveJobs lists the jobs that need work (without passwords, read-only).
func (s *Service) ActiveJobs(ctx context.Context) ([]*Job, error) {
	var active []Status
	for st := range statusNames {
		if st.active() {
			active = append(active, st)
		}
	}
	list, _, err := s.cfg.Store.ListJobs(ctx, Query{Statuses: active, Order: "CreateTime"})
	if err != nil {
		return nil, storeErr("list jobs", err)
	}
	return list, nil
}
