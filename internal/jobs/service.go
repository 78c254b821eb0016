// Package jobs is the domain of migration jobs: what a job is, the status
// machine (one table in status.go), the rules of each action (what Modify
// may change, which jobs conflict), and the scheduler that runs checks and
// migrations through the engines and records their progress.
//
// It never speaks HTTP or knows error codes: the API layer maps its errors
// (ErrNotFound, *StatusError, *InvalidError, *DuplicateError, ErrStore).
package jobs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"

	"slices"

	"sync"
	"time"

	"github.com/opendts/opendts/internal/catalog"
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/budget"
	"github.com/opendts/opendts/internal/engine/driver"
)

// Catalog resolves instance ids.
type Catalog interface {
	Lookup(id string) (catalog.Instance, error)
	// IDsAt lists the instance ids that resolve to host:port.
	IDsAt(host string, port int) []string
}

// Config of a Service.
type Config struct {
	Store   Store
	Engines engine.Registry
	Catalog Catalog
	// Regions the server serves; DstInfo.Region must be one of them.
	Regions []string
	Logger  *slog.Logger
	// Now is the clock; default time.Now. Its location is the time zone of
	// the API's time strings.
	Now func() time.Time
	// MaxUnusedJobs caps jobs created but never started (status 1, 4, 5);
	// 0 means 1000.
	MaxUnusedJobs int
	// Migrate runs a migration on an engine; default driver.Migrate, the
	// driver every family shares. The service's own tests put a scripted
	// migration in its place.
	Migrate func(ctx context.Context, eng engine.Engine, spec engine.Spec, report engine.Reporter, complete <-chan string) error
	// Budget is the node's copy workers the engines share; Get and List
	// show a running job that waits for one. Nil: no budget.
	Budget *budget.Budget
	// Cluster, when set, shares the jobs with other nodes (cluster.go):
	// work starts only on the node that claims the job, and actions taken
	// on any node reach the owner through the store.
	Cluster Cluster
}

// Service runs the job life cycle. Actions on a job are serialised within
// the process by one lock, held only around store calls; between the nodes
// of a cluster, by the store's revision-checked writes (a write that lost
// a race is read again and re-applied: readModifyWrite).
type Service struct {
	cfg Config

	mu   sync.Mutex
	runs map[string]*run
	wg   sync.WaitGroup
	// live holds the latest progress each running migration reported.
	liveMu sync.Mutex
	live   map[string]Progress
	// copies holds the copy figures of each migration running here.
	copies map[string]*copyTracker
	// ctx ends every run when the service closes.
	ctx    context.Context
	cancel context.CancelFunc
}

// New makes a Service. Call Resume once the server is ready, to pick up
// jobs that were active when the process last stopped.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Migrate == nil {
		cfg.Migrate = driver.Migrate
	}
	if cfg.MaxUnusedJobs <= 0 {
		cfg.MaxUnusedJobs = 1000
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, runs: map[string]*run{}, ctx: ctx, cancel: cancel}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// ErrTooManyUnused refuses a new job when too many are waiting unused.
var ErrTooManyUnused = errors.New("too many migration jobs are created but not started")

// ErrShuttingDown refuses work that would start while the service closes.
var ErrShuttingDown = errors.New("opendts is shutting down")

func storeErr(op string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrStore, op, err)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newJobID makes an id like the cloud's: dts- and 8 lowercase letters or
// digits.
func newJobID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	out := []byte("dts-")
	for _, c := range b {
		out = append(out, idAlphabet[int(c)%len(idAlphabet)])
	}
	return string(out)
}

// Create validates a new job and stores it at status 1.
func (s *Service) Create(ctx context.Context, j *Job) (string, error) {
	if j.Option.ConsistencyType == 0 {
		j.Option.ConsistencyType = 1
	}
	if _, err := s.validate(j); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	counts, err := s.cfg.Store.CountByStatus(ctx, StatusCreated, StatusCheckPassed, StatusCheckFailed)
	if err != nil {
		return "", storeErr("count jobs", err)
	}
	unused := counts[StatusCreated] + counts[StatusCheckPassed] + counts[StatusCheckFailed]
	if unused >= s.cfg.MaxUnusedJobs {
		return "", fmt.Errorf("%w (%d; at most %d): start or delete some", ErrTooManyUnused, unused, s.cfg.MaxUnusedJobs)
	}
	j.Status = StatusCreated
	j.CreateTime = s.now()
	j.Check = resetCheck()
	j.Detail = Detail{}
	j.ErrorInfo = nil
	for attempt := 0; ; attempt++ {
		j.ID = newJobID()
		err = s.cfg.Store.CreateJob(ctx, j)
		if !errors.Is(err, ErrExists) || attempt == 10 {
			break
		}
	}
	if err != nil {
		return "", storeErr("create job", err)
	}
	s.cfg.Logger.Info("job created", "job_id", j.ID, "migrate_type", j.Option.MigrateType)
	return j.ID, nil
}

// targetKey names the target instance a job writes into, by address, so
// that a catalogue id and the address it resolves to count as one.
func (s *Service) targetKey(j *Job) string {
	if j.DstAccessType == "cdb" {
		inst, err := s.cfg.Catalog.Lookup(j.Dst.InstanceId)
		if err != nil {
			return "instance " + j.Dst.InstanceId
		}
		return addressKey(inst.Host, inst.Port)
	}
	return addressKey(j.Dst.Ip, j.Dst.Port)
}

// overlapCandidates are the jobs that may write j's objects into j's
// target, found through the store's index (same target as named, or as any
// catalogue id resolving to the same address; same database or the whole
// instance) rather than by reading every job. The duplicate rule
// (duplicate.go) compares them by address as the catalogue resolves them
// now.
func (s *Service) overlapCandidates(ctx context.Context, j *Job, objects []engine.ObjectSelection) ([]*Job, error) {
	named, _ := ConflictKeys(j)
	targets := []string{named}
	if j.DstAccessType == "cdb" && s.cfg.Catalog != nil {
		if inst, err := s.cfg.Catalog.Lookup(j.Dst.InstanceId); err == nil {
			targets = append(targets, addressKey(inst.Host, inst.Port))
			for _, id := range s.cfg.Catalog.IDsAt(inst.Host, inst.Port) {
				targets = append(targets, "cdb:"+id)
			}
		}
	} else if s.cfg.Catalog != nil {
		for _, id := range s.cfg.Catalog.IDsAt(j.Dst.Ip, j.Dst.Port) {
			targets = append(targets, "cdb:"+id)
		}
	}
	var databases []string
	for _, o := range objects {
		databases = append(databases, o.Database)
	}
	return s.cfg.Store.WritingInto(ctx, targets, databases)
}

// Get returns a job, without its passwords.
func (s *Service) Get(ctx context.Context, id string) (*Job, error) {
	j, err := s.cfg.Store.GetJobState(ctx, id)
	if err != nil {
		return nil, storeErr("get job", err)
	}
	s.withCopy(j)
	s.markWaiting(j)
	s.markOwner(j)
	return j, nil
}

// markWaiting sets Detail.WaitingForWorker of a running job whose workers
// all wait for the node's budget.
func (s *Service) markWaiting(j *Job) {
	if j.Status != StatusRunning {
		return
	}
	u := s.cfg.Budget.Usage(j.ID)
	j.Detail.WaitingForWorker = u.Held == 0 && u.Waiting > 0
}

// List returns the jobs a query selects (read-only, without passwords) and
// how many match in all.
func (s *Service) List(ctx context.Context, q Query) ([]*Job, int, error) {
	list, total, err := s.cfg.Store.ListJobs(ctx, q)
	if err != nil {
		return nil, 0, storeErr("list jobs", err)
	}
	for _, j := range list {
		s.withCopy(j)
		s.markWaiting(j)
		s.markOwner(j)
	}
	return list, total, nil
}

// Modify changes a job at status 1, 4, 5 or 10. apply sets on the job what
// the client sent; everything else keeps its value. The database types and
// the target's region cannot change. The modified job returns to status 1
// with its check result cleared: it must be checked again.
func (s *Service) Modify(ctx context.Context, id string, apply func(*Job) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := s.modify(ctx, id, apply)
		if !errors.Is(err, ErrConflict) || attempt == maxConflicts {
			return err
		}
	}
}

// modify is one attempt of Modify: ErrConflict when another node wrote the
// job between its read and its write.
func (s *Service) modify(ctx context.Context, id string, apply func(*Job) error) error {
	old, err := s.cfg.Store.GetJob(ctx, id)
	if err != nil {
		return storeErr("get job", err)
	}
	to, ok := Next(old.Status, EventModify)
	if !ok {
		return &StatusError{JobID: id, Status: old.Status, Event: EventModify}
	}
	j := old.clone()
	if err := apply(j); err != nil {
		return err
	}
	if j.SrcDatabaseType != old.SrcDatabaseType {
		return invalid("SrcDatabaseType", "the source database type cannot be modified (it is %s); create a new job instead", old.SrcDatabaseType)
	}
	if j.DstDatabaseType != old.DstDatabaseType {
		return invalid("DstDatabaseType", "the target database type cannot be modified (it is %s); create a new job instead", old.DstDatabaseType)
	}
	if j.Dst.Region != old.Dst.Region {
		return invalid("DstInfo.Region", "the target's region cannot be modified (it is %q); create a new job instead", old.Dst.Region)
	}
	if _, err := s.validate(j); err != nil {
		return err
	}
	j.Status = to
	j.Check = resetCheck()
	j.Detail = Detail{}
	j.ErrorInfo = nil
	j.Verification = nil
	j.StartTime, j.EndTime = time.Time{}, time.Time{}
	if err := s.cfg.Store.UpdateJob(ctx, j); err != nil {
		if errors.Is(err, ErrConflict) {
			return err
		}
		return storeErr("update job", err)
	}
	s.cfg.Logger.Info("job modified", "job_id", id, "from_status", int(old.Status))
	return nil
}

// Delete removes a job that is not being checked or migrated.
func (s *Service) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		j, err := s.cfg.Store.GetJobState(ctx, id)
		if err != nil {
			return storeErr("get job", err)
		}
		if _, ok := Next(j.Status, EventDelete); !ok {
			return &StatusError{JobID: id, Status: j.Status, Event: EventDelete}
		}
		// A job waiting for its scheduled start has a timer: end it
		// first. (On another node, its owner sees the job gone.)
		if r := s.runs[id]; r != nil {
			r.cancel()
			delete(s.runs, id)
		}
		// Only the job as read: another node may have moved it since
		// (a scheduled start that just fired).
		err = s.cfg.Store.DeleteJob(IfRevision(ctx, j.Revision), id)
		if errors.Is(err, ErrConflict) && attempt < maxConflicts {
			continue
		}
		if err != nil {
			return storeErr("delete job", err)
		}
		break
	}
	s.cfg.Logger.Info("job deleted", "job_id", id)
	return nil
}

// transition moves a job by event under the lock, applying change to it
// before it is saved. It returns the updated job.
func (s *Service) transition(ctx context.Context, id string, event Event, change func(*Job)) (*Job, error) {
	return s.readModifyWrite(ctx, id, func(j *Job) (bool, error) {
		to, ok := Next(j.Status, event)
		if !ok {
			return false, &StatusError{JobID: id, Status: j.Status, Event: event}
		}
		j.Status = to
		if change != nil {
			change(j)
		}
		return true, nil
	})
}

// maxConflicts bounds how often one change is re-applied after losing a
// race to another node's write of the same job.
const maxConflicts = 50

// readModifyWrite reads a job (without its passwords), lets change decide
// and make a change, and stores it; when another node wrote the job
// meanwhile (ErrConflict) it reads the job again and asks change again, so
// the change applies to what is stored now. change returns false to write
// nothing. It returns the job as written.
func (s *Service) readModifyWrite(ctx context.Context, id string, change func(*Job) (bool, error)) (*Job, error) {
	for attempt := 0; ; attempt++ {
		j, err := s.cfg.Store.GetJobState(ctx, id)
		if err != nil {
			return nil, storeErr("get job", err)
		}
		write, err := change(j)
		if err != nil || !write {
			return j, err
		}
		err = s.cfg.Store.UpdateJob(ctx, j)
		if errors.Is(err, ErrConflict) && attempt < maxConflicts {
			continue
		}
		if err != nil {
			return nil, writeErr(err)
		}
		return j, nil
	}
}

// writeErr keeps ErrNotOwner recognisable: a run that lost its job stops
// quietly instead of reporting a store failure.
func writeErr(err error) error {
	if errors.Is(err, ErrNotOwner) || errors.Is(err, ErrNotFound) {
		return err
	}
	return storeErr("update job", err)
}

// update changes a job without moving its status (progress, check items).
// A job deleted meanwhile is not an error: there is nothing left to report.
func (s *Service) update(id string, change func(*Job) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateLocked(s.runCtx(id), id, change)
}

// updateIn is update with the context of the write given (a run's claim).
func (s *Service) updateIn(ctx context.Context, id string, change func(*Job) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateLocked(ctx, id, change)
}

func (s *Service) updateLocked(ctx context.Context, id string, change func(*Job) bool) {
	_, err := s.readModifyWrite(ctx, id, func(j *Job) (bool, error) { return change(j), nil })
	s.logWriteErr("save job progress", id, err)
}

func (j *Job) clone() *Job {
	c := *j
	c.Tags = slices.Clone(j.Tags)
	c.SrcInfoMulti = slices.Clone(j.SrcInfoMulti)
	c.Detail.Steps = slices.Clone(j.Detail.Steps)
	c.ErrorInfo = slices.Clone(j.ErrorInfo)
	c.Check.Items = slices.Clone(j.Check.Items)
	return &c
}
