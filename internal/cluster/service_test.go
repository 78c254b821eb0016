package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/testetcd"
)

// scriptedEngine passes every check; its migrations (run in place of the
// driver) report one step, say a full + incremental job caught up, and
// end when completed or cancelled.
type scriptedEngine struct {
	mu    sync.Mutex
	specs []engine.Spec
}

func (e *scriptedEngine) Check(context.Context, engine.Spec, engine.CheckProgress) ([]engine.CheckItem, error) {
	return []engine.CheckItem{{Name: "Fake", Result: engine.ResultPass}}, nil
}

func (e *scriptedEngine) Open(context.Context, engine.Spec) (engine.Migration, error) {
	return nil, errors.New("scriptedEngine: the driver is replaced")
}

func (e *scriptedEngine) migrate(ctx context.Context, _ engine.Engine, spec engine.Spec, rep engine.Reporter, complete <-chan string) error {
	e.mu.Lock()
	e.specs = append(e.specs, spec)
	e.mu.Unlock()
	rep.Plan([]engine.StepDef{{ID: "sinker", Name: "replicate"}})
	rep.StepStarted("sinker")
	if spec.MigrateType == engine.MigrateFullAndIncremental {
		rep.CaughtUp()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-complete:
		return nil
	}
}

// clusterNode is a job service on the etcd store with its node.
type clusterNode struct {
	svc  *jobs.Service
	node *Node
	eng  *scriptedEngine
}

func startNode(t *testing.T, etcd *testetcd.Cluster, prefix, name string) *clusterNode {
	t.Helper()
	st := openNode(t, etcd, prefix, testBox(t, key1))
	c := etcd.Client(t)
	n, err := Join(context.Background(), NodeConfig{Client: c, Keys: NewKeys(prefix), Name: name, LeaseTTL: 2 * time.Second, ClaimDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eng := &scriptedEngine{}
	svc := jobs.New(jobs.Config{
		Store: st, Engines: engine.Registry{engine.FamilyMySQL: eng}, Migrate: eng.migrate, Cluster: n,
		Logger: slog.New(slog.DiscardHandler),
	})
	n.Start(svc)
	t.Cleanup(func() {
		svc.Close()
		n.Close()
	})
	return &clusterNode{svc: svc, node: n, eng: eng}
}

func validJob(name string, migrateType int) *jobs.Job {
	return &jobs.Job{
		Name:            name,
		Option:          jobs.MigrateOption{RunMode: 1, MigrateType: migrateType, MigrateObject: jobs.MigrateObjectSelected},
		SrcDatabaseType: "mysql", SrcAccessType: "extranet",
		Src:             jobs.SrcInfo{Ip: "10.0.0.1", Port: 3306, User: "reader", Password: "src-pw"},
		DstDatabaseType: "mysql", DstAccessType: "extranet",
		Dst:          jobs.DstInfo{Ip: "10.0.0.2", Port: 3306, User: "writer", Password: "dst-pw"},
		DatabaseInfo: fmt.Sprintf(`[{"Database":%q}]`, name),
	}
}

func waitStatus(t *testing.T, svc *jobs.Service, id string, want jobs.Status) *jobs.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := svc.Get(context.Background(), id)
		if err == nil && j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: status %v (err %v), want %d", id, j.Status, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ModifyMigrateJob on one node and StartMigrateJob on another at the same
// moment: exactly one of them takes effect, and the job is as that one
// left it, never a mix of the two.
func TestModifyAndStartOnTwoNodesEndInOneOrder(t *testing.T) {
	etcd := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	a, b := startNode(t, etcd, prefix, "a"), startNode(t, etcd, prefix, "b")
	ctx := context.Background()
	won := map[string]int{}
	for i := range 12 {
		id, err := a.svc.Create(ctx, validJob(fmt.Sprintf("race%d", i), 2))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.svc.Check(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, a.svc, id, jobs.StatusCheckPassed)
		var modErr, startErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			modErr = a.svc.Modify(ctx, id, func(j *jobs.Job) error { j.Name = "modified"; return nil })
		})
		wg.Go(func() { startErr = b.svc.Start(ctx, id) })
		wg.Wait()
		j, err := a.svc.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var se *jobs.StatusError
		switch {
		case modErr == nil && errors.As(startErr, &se):
			won["modify"]++
			if j.Status != jobs.StatusCreated || j.Name != "modified" {
				t.Errorf("modify won, but the job is at %d named %q", j.Status, j.Name)
			}
		case startErr == nil && errors.As(modErr, &se):
			won["start"]++
			if j.Status == jobs.StatusCreated || j.Name == "modified" {
				t.Errorf("start won, but the job is at %d named %q", j.Status, j.Name)
			}
			if err := a.svc.Stop(ctx, id); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, a.svc, id, jobs.StatusFailed)
		default:
			t.Errorf("modify: %v; start: %v: want exactly one to succeed", modErr, startErr)
		}
	}
	t.Logf("orders seen: %v", won)
}

// A job's work runs on the node that claims it, whichever node was asked;
// Stop and Complete sent to the other node reach it; the epoch reaches
// the engine.
func TestStopAndCompleteReachTheOwner(t *testing.T) {
	etcd := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	nodes := map[string]*clusterNode{"a": startNode(t, etcd, prefix, "a"), "b": startNode(t, etcd, prefix, "b")}
	ctx := context.Background()
	for _, stop := range []bool{true, false} {
		id, err := nodes["a"].svc.Create(ctx, validJob(fmt.Sprintf("own%v", stop), 3))
		if err != nil {
			t.Fatal(err)
		}
		if err := nodes["a"].svc.Check(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, nodes["b"].svc, id, jobs.StatusCheckPassed)
		if err := nodes["b"].svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		j := waitStatus(t, nodes["a"].svc, id, jobs.StatusReadyComplete)
		owner := nodes[j.Node]
		if owner == nil {
			t.Fatalf("job at 8 with owner %q", j.Node)
		}
		other := nodes["a"]
		if j.Node == "a" {
			other = nodes["b"]
		}
		if stop {
			if err := other.svc.Stop(ctx, id); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, other.svc, id, jobs.StatusFailed)
		} else {
			if err := other.svc.Complete(ctx, id, engine.CompleteImmediately); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, other.svc, id, jobs.StatusSuccess)
		}
		owner.eng.mu.Lock()
		spec := owner.eng.specs[len(owner.eng.specs)-1]
		owner.eng.mu.Unlock()
		if spec.Epoch <= 0 || spec.JobID != id {
			t.Errorf("the owner's engine ran %s with epoch %d", spec.JobID, spec.Epoch)
		}
		// The finished job's claim is released.
		deadline := time.Now().Add(5 * time.Second)
		for owner.node.Owner(id) != "" {
			if time.Now().After(deadline) {
				t.Fatalf("the ended job %s is still claimed by %q", id, owner.node.Owner(id))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Two jobs writing into the same target database, started on two nodes at
// the same moment: one starts, the other is refused as a duplicate (the
// target's lock orders the two checks).
func TestDuplicateStartsOnTwoNodesOneWins(t *testing.T) {
	etcd := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	a, b := startNode(t, etcd, prefix, "a"), startNode(t, etcd, prefix, "b")
	ctx := context.Background()
	for i := range 6 {
		var ids [2]string
		for k, n := range []*clusterNode{a, b} {
			id, err := n.svc.Create(ctx, validJob("same", 2))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.svc.Check(ctx, id); err != nil {
				t.Fatal(err)
			}
			ids[k] = id
		}
		for _, id := range ids {
			waitStatus(t, a.svc, id, jobs.StatusCheckPassed)
		}
		var errs [2]error
		var wg sync.WaitGroup
		for k, n := range []*clusterNode{a, b} {
			wg.Go(func() { errs[k] = n.svc.Start(ctx, ids[k]) })
		}
		wg.Wait()
		var dup *jobs.DuplicateError
		started := -1
		switch {
		case errs[0] == nil && errors.As(errs[1], &dup):
			started = 0
		case errs[1] == nil && errors.As(errs[0], &dup):
			started = 1
		default:
			t.Fatalf("round %d: starts returned %v and %v: want one start and one DuplicateError", i, errs[0], errs[1])
		}
		if err := a.svc.Stop(ctx, ids[started]); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, a.svc, ids[started], jobs.StatusFailed)
		for _, id := range ids {
			if err := b.svc.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A scheduled start (RunMode 2) is armed by the node that claims it and
// runs at its time; a scheduled job deleted through the other node is gone
// from both, and its owner's timer ends with it (the claim is released).
func TestScheduledStartsAndDeleteAcrossNodes(t *testing.T) {
	etcd := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	nodes := map[string]*clusterNode{"a": startNode(t, etcd, prefix, "a"), "b": startNode(t, etcd, prefix, "b")}
	ctx := context.Background()
	other := func(name string) *clusterNode {
		if name == "a" {
			return nodes["b"]
		}
		return nodes["a"]
	}
	newScheduled := func(name string, at time.Time) string {
		j := validJob(name, 2)
		j.Option.RunMode, j.Option.ExpectTime = 2, at.Format(jobs.ExpectTimeLayout)
		id, err := nodes["a"].svc.Create(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if err := nodes["b"].svc.Check(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, nodes["a"].svc, id, jobs.StatusCheckPassed)
		if err := nodes["a"].svc.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}

	soon := newScheduled("soon", time.Now().Add(3*time.Second))
	waitStatus(t, nodes["b"].svc, soon, jobs.StatusReadyRun)
	j := waitStatus(t, nodes["b"].svc, soon, jobs.StatusRunning)
	if j.Node == "" {
		t.Error("a running scheduled job has no owner")
	}

	later := newScheduled("later", time.Now().Add(time.Hour))
	var owner string
	deadline := time.Now().Add(5 * time.Second)
	for owner == "" {
		if time.Now().After(deadline) {
			t.Fatal("the scheduled job was not claimed")
		}
		jl, _ := nodes["a"].svc.Get(ctx, later)
		owner = jl.Node
		time.Sleep(20 * time.Millisecond)
	}
	if err := other(owner).svc.Delete(ctx, later); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for nodes[owner].svc.HasRun(later) || nodes[owner].node.Owner(later) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("the deleted job's timer still runs on %s (claim %q)", owner, nodes[owner].node.Owner(later))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := nodes[owner].svc.Get(ctx, later); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the deleted job: %v", err)
	}
}
