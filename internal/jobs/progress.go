package jobs

import (
	"context"
	"maps"
	"slices"
	"time"
)

// MigratingStatuses are the statuses at which an engine may report
// progress (7, 8, 12): a store's SaveProgress takes only at these.
func MigratingStatuses() []Status {
	var out []Status
	for st := range statusNames {
		if st.migrating() {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return out
}

// activeJobs reads the jobs at an active status (see Status.active): the
// few a restart picks up (their passwords stay sealed; the runs read them).
func (s *Service) activeJobs(ctx context.Context) ([]*Job, error) {
	var active []Status
	for st := range statusNames {
		if st.active() {
			active = append(active, st)
		}
	}
	list, _, err := s.cfg.Store.ListJobs(ctx, Query{Statuses: active, Order: "CreateTime"})
	if err != nil {
		return nil, err
	}
	out := make([]*Job, 0, len(list))
	for _, l := range list {
		j, err := s.cfg.Store.GetJobState(ctx, l.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// saveProgress records a migration's latest progress and lag: in memory for
// /metrics, and in the store as a narrow write that only takes while the
// job is migrating.
func (s *Service) saveProgress(ctx context.Context, id string, p Progress) {
	s.liveMu.Lock()
	if s.live == nil {
		s.live = map[string]Progress{}
	}
	// A report that comes after the run ended (a delayed flush) must not
	// replace how it ended.
	if l := s.live[id]; l.ended.IsZero() {
		if p.HasProgress {
			l.Overall, l.Current, l.HasProgress = p.Overall, p.Current, true
		}
		if p.HasLag {
			l.LagSeconds, l.LagMegabyte, l.HasLag = p.LagSeconds, p.LagMegabyte, true
		}
		s.live[id] = l
	}
	s.liveMu.Unlock()
	// Under the service's lock, so that a transition (which rewrites the
	// whole job) never writes back progress older than this.
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logWriteErr("save job progress", id, s.cfg.Store.SaveProgress(ctx, id, p))
}

// Stats is what /metrics shows of the jobs.
type Stats struct {
	// ByStatus counts the jobs at each status.
	ByStatus map[Status]int
	// Running holds the latest progress and lag reported by each migration
	// running in this process, and by those that ended within
	// EndedRetention.
	Running map[string]Progress
}

// Stats counts jobs by status (an index count in the store; no job is
// read) and returns the running migrations' progress from memory.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	counts, err := s.cfg.Store.CountByStatus(ctx)
	if err != nil {
		return Stats{}, storeErr("count jobs", err)
	}
	s.mu.Lock()
	running := make(map[string]bool, len(s.runs))
	for id := range s.runs {
		running[id] = true
	}
	s.mu.Unlock()
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	now := s.now()
	for id, l := range s.live {
		if running[id] {
			continue
		}
		// A migration that ended keeps its last figures for a while,
		// so a dashboard shows how it ended.
		if l.ended.IsZero() {
			l.ended = now
			s.live[id] = l
		} else if now.Sub(l.ended) > EndedRetention {
			delete(s.live, id)
		}
	}
	return Stats{ByStatus: counts, Running: maps.Clone(s.live)}, nil
}

// EndedRetention is how long /metrics keeps showing the last progress and
// lag of a migration that ended (succeeded, failed or stopped) in this
// process.
const EndedRetention = time.Hour

// startLive forgets what an earlier run of the job left in memory.
func (s *Service) startLive(id string) {
	s.liveMu.Lock()
	delete(s.live, id)
	s.liveMu.Unlock()
}

// endLive records that a migration ended; one that succeeded ends at 100 %.
func (s *Service) endLive(id string, succeeded bool) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	l, ok := s.live[id]
	if !ok && !succeeded {
		return
	}
	if succeeded {
		l.Overall, l.Current, l.HasProgress = 100, 100, true
		if l.HasLag {
			l.LagSeconds, l.LagMegabyte = 0, 0
		}
	}
	l.ended = s.now()
	if s.live == nil {
		s.live = map[string]Progress{}
	}
	s.live[id] = l
}
