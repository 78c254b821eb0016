package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/budget"
	"github.com/opendts/opendts/internal/jobs"
)

// A running job whose workers all wait for the node's copy-worker budget
// shows as waiting for a worker in Get and List, and no longer once it
// has one.
func TestServiceShowsAJobWaitingForAWorker(t *testing.T) {
	b := budget.New(1)
	h := newHarness(t, func(c *jobs.Config) { c.Budget = b })
	ctx := context.Background()
	id := h.checked(newJob("shop", engine.MigrateFull))
	hold, err := b.Acquire(ctx, "another-job")
	if err != nil {
		t.Fatal(err)
	}
	gate := h.gate()
	got := make(chan struct{})
	h.eng.setMigrate(func(ctx context.Context, spec engine.Spec, rep engine.Reporter, complete <-chan string) error {
		release, err := b.Acquire(ctx, spec.JobID)
		if err != nil {
			return err
		}
		defer release()
		close(got)
		<-gate
		return nil
	})
	if err := h.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(id, jobs.StatusRunning)
	deadline := time.Now().Add(5 * time.Second)
	for !h.get(id).Detail.WaitingForWorker {
		if time.Now().After(deadline) {
			t.Fatal("the job does not show as waiting for a worker")
		}
		time.Sleep(5 * time.Millisecond)
	}
	list, _, err := h.svc.List(ctx, jobs.Query{})
	if err != nil || len(list) != 1 || !list[0].Detail.WaitingForWorker {
		t.Fatalf("List: %v, %+v", err, list)
	}
	hold()
	<-got
	if h.get(id).Detail.WaitingForWorker {
		t.Error("the job still shows as waiting with a worker")
	}
	close(gate)
	h.wait(id, jobs.StatusSuccess)
}
