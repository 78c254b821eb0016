package jobs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// run is work in flight for one job: a check, a scheduled start, or a
// migration.
type run struct {
	cancel   context.CancelFunc
	complete chan string
	// stopping tells a migration's end that StopMigrateJob asked for it.
	stopping bool
	// claim is this node's claim on the job in cluster mode (zero on a
	// single node): the run's writes carry it, and it is released when
	// the run ends.
	claim Claim
}

// startRun registers work for a job and runs fn in a goroutine; the lock
// must be held. fn's context ends on Stop, Delete or Close. claim is the
// node's claim on the job in cluster mode (zero otherwise), released when
// fn returns.
func (s *Service) startRun(id string, claim Claim, fn func(ctx context.Context, r *run)) error {
	if s.ctx.Err() != nil {
		return ErrShuttingDown
	}
	ctx, cancel := context.WithCancel(s.ctx)
	r := &run{cancel: cancel, complete: make(chan string, 1), claim: claim}
	s.runs[id] = r
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		if claim.Epoch != 0 {
			// Last: the run has stopped writing before another node may
			// claim the job.
			defer s.cfg.Cluster.Release(id, claim)
		}
		defer func() {
			s.mu.Lock()
			if s.runs[id] == r {
				delete(s.runs, id)
			}
			s.mu.Unlock()
		}()
		defer func() {
			// A bug in an engine fails its job, not the whole server.
			if p := recover(); p != nil {
				s.cfg.Logger.Error("panic in a job's work", "job_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				s.mu.Lock()
				wctx := s.runCtx(id)
				_, _ = s.transition(wctx, id, EventFailed, func(j *Job) {
					j.EndTime = s.now()
					j.ErrorInfo = []ErrorInfo{{ErrorLog: "InternalError: opendts hit an internal error running this job; the server log has the details"}}
				})
				if j, err := s.cfg.Store.GetJobState(wctx, id); err == nil && j.Status == StatusChecking {
					_, _ = s.transition(wctx, id, EventCheckFailed, func(j *Job) {
						j.Check.Status, j.Check.Flag, j.Check.Message = CheckFinished, CheckFlagFailed, "the check hit an internal error; the server log has the details"
					})
				}
				s.mu.Unlock()
			}
		}()
		fn(ctx, r)
	}()
	return nil
}

// Close stops every run and waits for them. Runs interrupted this way keep
// their status, so Resume picks them up at the next start.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Check starts the pre-migration check of a job at status 1, 4 or 5.
func (s *Service) Check(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return ErrShuttingDown
	}
	if _, err := s.transition(ctx, id, EventCheck, func(j *Job) {
		j.Check = CheckResult{Status: CheckStarting, Flag: CheckFlagNotChecked, StartTime: s.now()}
	}); err != nil {
		return err
	}
	if s.cfg.Cluster != nil {
		s.cfg.Cluster.Wake()
		return nil
	}
	return s.startRun(id, Claim{}, func(ctx context.Context, _ *run) { s.runCheck(ctx, id) })
}

// spec resolves a job into what an engine needs.
func (s *Service) spec(j *Job) (engine.Spec, error) {
	objects, _, err := ParseDatabaseInfo(j.SrcDatabaseType, j.DatabaseInfo)
	if err != nil {
		return engine.Spec{}, err
	}
	src, err := s.endpoint("SrcInfo", j.SrcDatabaseType, j.SrcAccessType, j.Src.InstanceId, j.Src.Ip, j.Src.Port, j.Src.User, j.Src.Password)
	if err != nil {
		return engine.Spec{}, err
	}
	dst, err := s.endpoint("DstInfo", j.DstDatabaseType, j.DstAccessType, j.Dst.InstanceId, j.Dst.Ip, j.Dst.Port, j.Dst.User, j.Dst.Password)
	if err != nil {
		return engine.Spec{}, err
	}
	return engine.Spec{
		JobID:           j.ID,
		MigrateType:     engine.MigrateType(j.Option.MigrateType),
		MigrateObject:   engine.MigrateObject(j.Option.MigrateObject),
		Objects:         objects,
		Source:          src,
		Target:          dst,
		TargetReadOnly:  j.Dst.ReadOnly == 1,
		OverrideRoot:    j.Option.IsOverrideRoot == 1,
		ConsistencyType: engine.ConsistencyType(j.Option.ConsistencyType),
		ConsistencyParams: engine.ConsistencyParams{
			SelectRowsPerTable: j.Option.ConsistencyParams.SelectRowsPerTable,
			TablesSelectAll:    j.Option.ConsistencyParams.TablesSelectAll,
			TablesSelectCount:  j.Option.ConsistencyParams.TablesSelectCount,
		},
		ExternParams: j.Option.ExternParams,
	}, nil
}

// endpoint resolves one side; a job's own credentials win over the
// catalogue's.
func (s *Service) endpoint(side, dbType, access, instanceID, ip string, port int, user, password string) (engine.Endpoint, error) {
	e := engine.Endpoint{DatabaseType: dbType, Host: ip, Port: port, User: user, Password: password}
	if access != "cdb" {
		return e, nil
	}
	inst, err := s.cfg.Catalog.Lookup(instanceID)
	if err != nil {
		return e, fmt.Errorf("%s.InstanceId %q: %w", side, instanceID, err)
	}
	e.InstanceID, e.Host, e.Port = instanceID, inst.Host, inst.Port
	if e.User == "" {
		e.User, e.Password = inst.User, inst.Password
	}
	return e, nil
}

func (s *Service) runCheck(ctx context.Context, id string) {
	j, err := s.cfg.Store.GetJob(ctx, id)
	if err != nil {
		s.cfg.Logger.Error("read job to check", "job_id", id, "err", err)
		return
	}
	var items []engine.CheckItem
	spec, err := s.spec(j)
	if err == nil {
		var eng engine.Engine
		eng, err = s.cfg.Engines.For(j.SrcDatabaseType, j.DstDatabaseType)
		if errors.Is(err, engine.ErrUnsupported) {
			err = nil
			items = []engine.CheckItem{{
				Name:    "EngineSupportCheck",
				Result:  engine.ResultFail,
				Message: fmt.Sprintf("opendts cannot migrate %s into %s yet: no engine for this pair is built in", j.SrcDatabaseType, j.DstDatabaseType),
				Advice:  "Use a mysql, mariadb or percona source and target, or follow the project's issues for other families.",
			}}
		} else if err == nil {
			s.update(id, func(j *Job) bool {
				j.Check.Status = CheckRunning
				return true
			})
			items, err = eng.Check(ctx, spec, func(done, total int) {
				if total <= 0 {
					return
				}
				pct := done * 100 / total
				s.update(id, func(j *Job) bool {
					if j.Status != StatusChecking || pct <= j.Check.Progress {
						return false
					}
					j.Check.Progress = min(pct, 99)
					return true
				})
			})
		}
	}
	if ctx.Err() != nil {
		// Interrupted by shutdown: the job stays at 3 and is checked again
		// after the restart.
		return
	}
	// The other jobs are opendts's to compare, not the engine's. The item
	// is shown only when it has something to say (a conflict or a
	// warning), so a check's items stay the engine's in the common case.
	if dup := s.duplicateCheckItem(ctx, j); dup.Result != engine.ResultPass {
		items = append([]engine.CheckItem{dup}, items...)
	}
	if err != nil {
		items = append(items, engine.CheckItem{
			Name: "CheckRun", Result: engine.ResultFail,
			Message: "the check could not run: " + err.Error(),
			Advice:  "Fix the cause above and run CreateMigrateCheckJob again.",
		})
	}
	passed := true
	var failed []string
	for _, it := range items {
		if it.Result == engine.ResultFail || it.Result == engine.ResultNotRun {
			passed = false
		}
		if it.Result == engine.ResultFail {
			failed = append(failed, it.Name)
		}
	}
	event := EventCheckPassed
	if !passed {
		event = EventCheckFailed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, terr := s.transition(s.runCtx(id), id, event, func(j *Job) {
		j.Check.Status = CheckFinished
		j.Check.Progress = 100
		j.Check.Items = checkItemsOf(items)
		j.Check.EndTime = s.now()
		if passed {
			j.Check.Flag, j.Check.ErrorCode, j.Check.Message = CheckFlagPassed, 0, "ok"
		} else {
			j.Check.Flag, j.Check.ErrorCode, j.Check.Message = CheckFlagFailed, -1, checkFailureMessage(items)
		}
	})
	if terr != nil {
		s.logWriteErr("record check result", id, terr)
		return
	}
	if passed {
		s.cfg.Logger.Info("check finished", "job_id", id, "passed", true, "items", len(items))
	} else {
		s.cfg.Logger.Info("check finished", "job_id", id, "passed", false, "items", len(items),
			"failed", strings.Join(failed, ","), "not_run", countResult(items, engine.ResultNotRun))
	}
}

// checkFailureMessage lists the failed items with their advice, for
// clients that only read ErrorMessage. Items that did not run are counted,
// not listed: their cause is the failed connection, already listed once.
func checkFailureMessage(items []engine.CheckItem) string {
	var b strings.Builder
	n := 0
	for _, it := range items {
		if it.Result != engine.ResultFail {
			continue
		}
		n++
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "[%s] %s", it.Name, it.Message)
		if it.Advice != "" {
			b.WriteString(" (advice: " + it.Advice + ")")
		}
	}
	msg := fmt.Sprintf("%d check item(s) failed: %s", n, b.String())
	if notRun := countResult(items, engine.ResultNotRun); notRun > 0 {
		msg += fmt.Sprintf(". %d other item(s) not run until the connection works", notRun)
	}
	return msg
}

func countResult(items []engine.CheckItem, result string) int {
	n := 0
	for _, it := range items {
		if it.Result == result {
			n++
		}
	}
	return n
}

// Start starts a job whose check passed: now (RunMode 1) or at its
// ExpectTime (RunMode 2, status 6 until then).
func (s *Service) Start(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return ErrShuttingDown
	}
	j, err := s.cfg.Store.GetJob(ctx, id)
	if err != nil {
		return storeErr("get job", err)
	}
	if _, ok := Next(j.Status, EventStart); ok && s.cfg.Cluster != nil {
		// Another node may be starting a job into the same target now:
		// the duplicate check and the start below happen under the
		// target's lock, so one of the two sees the other running.
		unlock, err := s.cfg.Cluster.LockTarget(ctx, s.targetKey(j))
		if err != nil {
			return fmt.Errorf("%w: lock the target for the start: %w", ErrStore, err)
		}
		defer unlock()
	}
	if _, ok := Next(j.Status, EventStart); ok {
		// Only a start that would be allowed is compared with the other
		// jobs: a wrong status is the clearer answer.
		if err := s.refuseRunningDuplicate(ctx, j); err != nil {
			return err
		}
	}
	if j.Option.RunMode == 2 {
		if _, err := s.transition(ctx, id, EventSchedule, nil); err != nil {
			return err
		}
		if s.cfg.Cluster != nil {
			s.cfg.Cluster.Wake()
			return nil
		}
		return s.schedule(id, j.Option.ExpectTime, Claim{})
	}
	if _, err := s.transition(ctx, id, EventStart, s.markStarted); err != nil {
		return err
	}
	if s.cfg.Cluster != nil {
		s.cfg.Cluster.Wake()
		return nil
	}
	return s.startRun(id, Claim{}, func(ctx context.Context, r *run) { s.runMigration(ctx, id, r, false) })
}

func (s *Service) markStarted(j *Job) {
	j.StartTime = s.now()
	j.EndTime = time.Time{}
	j.ErrorInfo = nil
	j.Detail = Detail{}
	j.Verification = nil
}

// schedule waits for ExpectTime, then runs the migration. The lock must be
// held.
func (s *Service) schedule(id, expect string, claim Claim) error {
	at, err := time.ParseInLocation(ExpectTimeLayout, expect, s.now().Location())
	if err != nil {
		return invalid("MigrateOption.ExpectTime", "MigrateOption.ExpectTime %q is not a time of the form yyyy-mm-dd hh:mm:ss", expect)
	}
	return s.startRun(id, claim, func(ctx context.Context, r *run) {
		wait := at.Sub(s.now())
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ctx.Done():
				s.mu.Lock()
				defer s.mu.Unlock()
				if r.stopping {
					s.recordStopped(id)
				}
				return
			case <-t.C:
			}
		}
		s.mu.Lock()
		_, err := s.transition(s.runCtx(id), id, EventRun, s.markStarted)
		if err != nil && r.stopping {
			// Stop came between the timer and the start.
			s.recordStopped(id)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err != nil {
			s.logWriteErr("start scheduled job", id, err)
			return
		}
		s.runMigration(ctx, id, r, false)
	})
}

func (s *Service) runMigration(ctx context.Context, id string, r *run, resume bool) {
	j, err := s.cfg.Store.GetJob(ctx, id)
	if err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		// A Stop that came before the read cancelled it: the job is at 11
		// and nothing else would move it to 10.
		if r.stopping {
			s.recordStopped(id)
			return
		}
		s.cfg.Logger.Error("read job to migrate", "job_id", id, "err", err)
		return
	}
	spec, err := s.spec(j)
	spec.Resume = resume
	spec.Epoch = r.claim.Epoch
	if err == nil {
		var eng engine.Engine
		eng, err = s.cfg.Engines.For(j.SrcDatabaseType, j.DstDatabaseType)
		if err == nil {
			s.cfg.Logger.Info("migration started", "job_id", id, "migrate_type", int(spec.MigrateType))
			s.startLive(id)
			rep := newReporter(s, id, r.claim)
			err = s.cfg.Migrate(ctx, eng, spec, rep, r.complete)
			rep.flush()
			s.endCopy(id, rep.copy)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// What happened wins over what was asked meanwhile: a migration that
	// succeeded as Stop or a shutdown came is a success.
	if err != nil && ctx.Err() != nil && !r.stopping {
		// Shutdown: the job keeps its status and resumes after a restart.
		return
	}
	bg := s.runCtx(id)
	s.endLive(id, err == nil)
	switch {
	case err != nil && r.stopping:
		s.recordStopped(id)
		return
	case err != nil:
		s.cfg.Logger.Warn("migration failed", "job_id", id, "err", err)
		_, err = s.transition(bg, id, EventFailed, func(j *Job) {
			j.EndTime = s.now()
			j.ErrorInfo = []ErrorInfo{{ErrorLog: "FailedOperation.MigrateFailed: " + err.Error()}}
			markRunningStep(j, StepFailed)
		})
	default:
		s.cfg.Logger.Info("migration succeeded", "job_id", id)
		_, err = s.transition(bg, id, EventSucceeded, func(j *Job) {
			j.EndTime = s.now()
			j.Detail.Progress, j.Detail.CurrentStepProgress = 100, 100
			// Every step of a job that succeeded did too, also those a
			// resumed run skipped because they were done before.
			for i := range j.Detail.Steps {
				j.Detail.Steps[i].Status = StepSucceeded
			}
		})
	}
	s.logWriteErr("record migration end", id, err)
}

// recordStopped ends a stopped job at 10; the lock must be held.
func (s *Service) recordStopped(id string) {
	_, err := s.transition(s.runCtx(id), id, EventStopped, func(j *Job) {
		j.EndTime = s.now()
		j.ErrorInfo = []ErrorInfo{{ErrorLog: "FailedOperation.Stopped: the migration was stopped by StopMigrateJob"}}
		markRunningStep(j, StepFailed)
	})
	s.logWriteErr("record stop", id, err)
}

func markRunningStep(j *Job, status int) {
	for i := range j.Detail.Steps {
		if j.Detail.Steps[i].Status == StepRunning {
			j.Detail.Steps[i].Status = status
		}
	}
}

// Stop revokes a migration that is waiting, running or ready to complete;
// it ends failed (10), through stopping (11).
func (s *Service) Stop(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.transition(ctx, id, EventStop, nil); err != nil {
		return err
	}
	r := s.runs[id]
	if r == nil {
		if s.cfg.Cluster != nil && s.cfg.Cluster.Owner(id) != "" {
			// Another node runs it: it sees the status and stops
			// (Changed).
			return nil
		}
		// Nothing in flight: the stop is already done.
		s.recordStopped(id)
		return nil
	}
	r.stopping = true
	r.cancel()
	return nil
}

// Complete finishes a full + incremental job at status 8: the engine
// applies what the source has written until now and the job ends at 9.
func (s *Service) Complete(ctx context.Context, id, mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.cfg.Store.GetJob(ctx, id)
	if err != nil {
		return storeErr("get job", err)
	}
	r := s.runs[id]
	if j.Status == StatusReadyComplete && r == nil && s.cfg.Cluster == nil {
		return fmt.Errorf("%w: job %s has no running migration to complete", ErrShuttingDown, id)
	}
	if _, err := s.transition(ctx, id, EventComplete, func(j *Job) { j.CompleteMode = mode }); err != nil {
		return err
	}
	if r == nil {
		// Cluster mode: the owner sees the status (Changed); with no
		// owner, the node that claims the job completes it.
		if s.cfg.Cluster != nil {
			s.cfg.Cluster.Wake()
		}
		return nil
	}
	select {
	case r.complete <- mode:
	default:
	}
	return nil
}

// Resume picks up the jobs that were active when the process stopped: an
// interrupted check runs again, a scheduled start is re-armed, a migration
// resumes from the engine's checkpoints, a stop in progress is finished.
func (s *Service) Resume(ctx context.Context) error {
	all, err := s.activeJobs(ctx)
	if err != nil {
		return storeErr("list jobs", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range all {
		if !j.Status.active() || s.runs[j.ID] != nil {
			continue
		}
		id := j.ID
		s.cfg.Logger.Info("resuming job", "job_id", id, "status", int(j.Status))
		switch j.Status {
		case StatusChecking:
			j.Check = CheckResult{Status: CheckStarting, Flag: CheckFlagNotChecked, StartTime: s.now()}
			if err := s.cfg.Store.UpdateJob(ctx, j); err != nil {
				return storeErr("update job", err)
			}
			err = s.startRun(id, Claim{}, func(ctx context.Context, _ *run) { s.runCheck(ctx, id) })
		case StatusReadyRun:
			err = s.schedule(id, j.Option.ExpectTime, Claim{})
		case StatusRunning, StatusReadyComplete, StatusCompleting:
			completing := j.Status == StatusCompleting
			mode := completeModeOf(j)
			err = s.startRun(id, Claim{}, func(ctx context.Context, r *run) {
				if completing {
					r.complete <- mode
				}
				s.runMigration(ctx, id, r, true)
			})
		case StatusStopping:
			s.recordStopped(id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
