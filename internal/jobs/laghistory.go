package jobs

import (
	"context"
	"sync"
	"time"
)

// LagSample is one reading of a migrating job's lag and copy rate.
type LagSample struct {
	Time                time.Time
	SecondsBehindMaster int64
	MasterSlaveDistance int64
	RowsPerSecond       int64
	Progress            int
}

// LagHistory keeps, in memory only, the recent lag and rates of the jobs
// that are migrating (status 7, 8 or 12): one sample per job every
// Interval, the last Keep of them (by default every 2 s for 30 minutes:
// 900 samples, about 50 KB a job). A job's history is dropped an hour
// after its last sample; a restarted server starts with none.
type LagHistory struct {
	Interval time.Duration
	Keep     int

	svc *Service
	mu  sync.Mutex
	by  map[string]*lagRing
	now func() time.Time
}

type lagRing struct {
	samples []LagSample // oldest first, at most Keep
	last    time.Time
}

// NewLagHistory records the lag of svc's jobs once Run is called.
func NewLagHistory(svc *Service) *LagHistory {
	return &LagHistory{Interval: 2 * time.Second, Keep: 900, svc: svc, by: map[string]*lagRing{}, now: time.Now}
}

// Run samples until ctx ends.
func (h *LagHistory) Run(ctx context.Context) {
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	for {
		h.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample reads every migrating job once and records its lag.
func (h *LagHistory) Sample(ctx context.Context) {
	list, _, err := h.svc.List(ctx, Query{Statuses: MigratingStatuses()})
	if err != nil {
		return
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range list {
		s := LagSample{
			Time:                now,
			SecondsBehindMaster: j.Detail.SecondsBehindMaster,
			MasterSlaveDistance: j.Detail.MasterSlaveDistance,
			Progress:            j.Detail.Progress,
		}
		if j.Detail.Copy != nil {
			s.RowsPerSecond = j.Detail.Copy.RowsPerSecond
		}
		r := h.by[j.ID]
		if r == nil {
			r = &lagRing{}
			h.by[j.ID] = r
		}
		r.samples = append(r.samples, s)
		if len(r.samples) > h.Keep {
			r.samples = append(r.samples[:0:0], r.samples[len(r.samples)-h.Keep:]...)
		}
		r.last = now
	}
	for id, r := range h.by {
		if now.Sub(r.last) > time.Hour {
			delete(h.by, id)
		}
	}
}

// Of returns a copy of a job's samples, oldest first (none when the job
// has not migrated since the server started).
func (h *LagHistory) Of(id string) []LagSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.by[id]
	if r == nil {
		return nil
	}
	return append([]LagSample(nil), r.samples...)
}
