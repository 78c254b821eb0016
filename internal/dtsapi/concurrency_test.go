package dtsapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/enginetest"
)

// countingEngine wraps the scripted engine and counts migrations in flight
// per job (the driver opens a run once and closes it at its end): a job
// must never run twice at once.
type countingEngine struct {
	*enginetest.Script
	mu      sync.Mutex
	active  map[string]int
	started map[string]int
	twice   []string
}

func (c *countingEngine) Open(ctx context.Context, spec engine.Spec) (engine.Migration, error) {
	c.mu.Lock()
	c.active[spec.JobID]++
	c.started[spec.JobID]++
	if c.active[spec.JobID] > 1 {
		c.twice = append(c.twice, spec.JobID)
	}
	// Passwords survive every status change and Modify of other fields.
	if spec.Source.Password != "src-pa$$word" || spec.Target.Password != "dst-pa$$word" {
		c.twice = append(c.twice, spec.JobID+" (passwords lost: "+spec.Source.Password+", "+spec.Target.Password+")")
	}
	c.mu.Unlock()
	m, err := c.Script.Open(ctx, spec)
	return &countingRun{Migration: m, c: c, id: spec.JobID}, err
}

type countingRun struct {
	engine.Migration
	c  *countingEngine
	id string
}

func (r *countingRun) Close() {
	r.Migration.Close()
	r.c.mu.Lock()
	r.c.active[r.id]--
	r.c.mu.Unlock()
}

// Copy reports progress while it runs, as engines do, so narrow progress
// writes race the actions' full writes.
func (r *countingRun) Copy(ctx context.Context, rep engine.CopyReport) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				rep.Copied(i % 100)
			}
		}
	}()
	return r.Migration.Copy(ctx, rep)
}

// modifyOp is one successful ModifyMigrateJob: the name it set and when
// the call was sent and answered.
type modifyOp struct {
	name       string
	start, end time.Time
}

// TestConcurrentActions: 50 clients race StartMigrateJob, StopMigrateJob,
// ModifyMigrateJob and CreateMigrateCheckJob on one hot job and on a few
// others. Every call either succeeds or is refused for the job's status
// (never a store error such as "database is locked"), no job runs twice at
// once, every successful Start runs the migration once, and no successful
// Modify is lost: a job's final name is that of a Modify after whose answer
// no other successful Modify of the job was sent.
func TestConcurrentActions(t *testing.T) {
	var ce *countingEngine
	e := newEnv(t, func(cfg *app.Config) {
		ce = &countingEngine{Script: cfg.Engines[engine.FamilyMySQL].(*enginetest.Script), active: map[string]int{}, started: map[string]int{}}
		cfg.Engines = engine.Registry{engine.FamilyMySQL: ce}
	})
	const jobsN, clients, calls = 5, 50, 16
	ids := make([]string, jobsN)
	for i := range ids {
		req := newJobRequest(fmt.Sprintf("race-%d", i))
		req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":"db%d"}]`, i))
		ids[i] = e.create(req)
		e.check(ids[i])
	}
	for _, id := range ids {
		e.waitStatus(id, 4)
	}
	var mu sync.Mutex
	modifies := map[string][]modifyOp{}
	startsOK := map[string]int{}
	stopsOK := map[string]int{}
	bad := []string{}
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for k := range calls {
				id := ids[0] // the hot job, half of the time
				if r.IntN(2) == 1 {
					id = ids[1+r.IntN(jobsN-1)]
				}
				var err error
				op := []string{"Start", "Stop", "Modify", "Check"}[r.IntN(4)]
				t0 := time.Now()
				name := fmt.Sprintf("c%d-%d", g, k)
				if op == "Modify" {
					err = modify(e, id, func(m *dts.ModifyMigrateJobRequest) { m.JobName = sp(name) })
				} else {
					err = e.jobCall(op, id)
				}
				code := codeOf(t, err)
				mu.Lock()
				switch {
				case code == "" && op == "Modify":
					modifies[id] = append(modifies[id], modifyOp{name, t0, time.Now()})
				case code == "" && op == "Start":
					startsOK[id]++
				case code == "" && op == "Stop":
					stopsOK[id]++
				case code == "" || code == "FailedOperation.NotAllowOperation":
				default:
					bad = append(bad, fmt.Sprintf("%s %s: %v", op, id, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	// Let every run end: stop what runs, wait for stops and checks.
	for _, id := range ids {
		j := e.waitFor(id, func(j *dts.MigrateJobInfo) bool { return *j.Status != 3 && *j.Status != 11 })
		if *j.Status == 7 {
			if err := e.jobCall("Stop", id); err != nil {
				t.Fatal(err)
			}
			e.waitStatus(id, 10)
		}
	}
	ce.mu.Lock()
	defer ce.mu.Unlock()
	if len(ce.twice) > 0 {
		t.Errorf("jobs ran twice at once, or without their passwords: %v", ce.twice)
	}
	for _, id := range ids {
		// Every start runs the migration, except one a Stop cancelled
		// before its run reached the engine: a stop may spare a run, never
		// add one.
		if ce.started[id] > startsOK[id] || ce.started[id] < startsOK[id]-stopsOK[id] {
			t.Errorf("job %s: %d successful StartMigrateJob and %d StopMigrateJob, %d migrations run", id, startsOK[id], stopsOK[id], ce.started[id])
		}
		final := *e.describe(id).JobName
		ops := modifies[id]
		if len(ops) == 0 {
			continue
		}
		var writer *modifyOp
		for i := range ops {
			if ops[i].name == final {
				writer = &ops[i]
			}
		}
		if writer == nil {
			t.Errorf("job %s: final name %q was set by no successful Modify", id, final)
			continue
		}
		for _, o := range ops {
			if o.start.After(writer.end) {
				t.Errorf("job %s: Modify to %q, sent after the one to %q was answered, was lost", id, o.name, final)
			}
		}
	}
	t.Logf("modifies %d, starts %v", len(modifies), startsOK)
}
