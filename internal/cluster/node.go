package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/opendts/opendts/internal/jobs"
)

// NodeConfig configures one node of a cluster.
type NodeConfig struct {
	Client *clientv3.Client
	Keys   Keys
	// Name identifies the node; it must be unique in the cluster.
	Name string
	// Address is where the node's API listens, shown to DBAs.
	Address string
	// LeaseTTL is how long the node's claims outlive it (kill -9, a pause,
	// a network cut); default 10 s.
	LeaseTTL time.Duration
	// MaxJobs caps the jobs this node works on at once; 0 is unlimited.
	MaxJobs int
	// ClaimDelay is how long a node waits before claiming a job another
	// node should have taken (the least-loaded one); default 3 s.
	ClaimDelay time.Duration
	// RequestTimeout bounds each etcd request; default 5 s.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// Jobs is what a node drives: the job service (jobs.Service).
type Jobs interface {
	ActiveJobs(ctx context.Context) ([]*jobs.Job, error)
	Adopt(ctx context.Context, id string, c jobs.Claim) (bool, error)
	Changed(ctx context.Context, id string)
	Abandon() int
	// HasRun reports whether the job has work running here.
	HasRun(id string) bool
}

// NodeInfo is a live node as registered in etcd.
type NodeInfo struct {
	Name    string
	Address string
	// Started is when the node started; Registered when its current
	// lease was granted (a node re-registers after losing its lease).
	Started    time.Time
	Registered time.Time
	MaxJobs    int `json:",omitempty"`
	// Jobs counts the jobs it owns now (not stored: from the claims).
	Jobs int `json:"-"`
	// Lease is the node's etcd lease (not stored: from the key).
	Lease clientv3.LeaseID `json:"-"`
}

type claimInfo struct {
	node  string
	epoch int64
}

// Node is this process's membership of the cluster: its registration
// under a lease, the claims it makes, and what it knows of the other
// nodes and of every claim (kept by watches).
type Node struct {
	cfg     NodeConfig
	log     *slog.Logger
	started time.Time

	mu      sync.Mutex
	session *concurrency.Session
	claims  map[string]claimInfo // by job id
	nodes   map[string]NodeInfo  // by name
	// unowned remembers since when an active job has had no owner.
	unowned map[string]time.Time
	// cooldown holds jobs whose run here ended while the job still needs
	// work: this node claims them again only after the time given, so a
	// run that cannot start (say, a password it cannot open) does not spin.
	cooldown map[string]time.Time

	wake   chan struct{}
	jobs   Jobs
	ctx    context.Context
	cancel context.CancelFunc
	// loops are the node's goroutines: run, keepLease and watch.
	loops sync.WaitGroup
}

var _ jobs.Cluster = (*Node)(nil)

// Join registers the node under a new lease. Start begins its work once
// the job service exists.
func Join(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/ \t\n") {
		return nil, fmt.Errorf("node name %q: give a non-empty name without slashes or spaces", cfg.Name)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.LeaseTTL < 2*time.Second {
		return nil, fmt.Errorf("lease TTL %s is too short: use 2 s or more", cfg.LeaseTTL)
	}
	if cfg.ClaimDelay <= 0 {
		cfg.ClaimDelay = 3 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, started: time.Now(),
		claims: map[string]claimInfo{}, nodes: map[string]NodeInfo{}, unowned: map[string]time.Time{}, cooldown: map[string]time.Time{},
		wake: make(chan struct{}, 1),
	}
	if err := n.register(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// register takes a new lease and writes the node's key under it. A name
// held by a live node is refused: two nodes with one name would release
// each other's claims.
func (n *Node) register(ctx context.Context) error {
	ttl := int64(n.cfg.LeaseTTL.Round(time.Second) / time.Second)
	// The grant is bounded: without one, a client that reaches no member
	// waits for one forever, and so would a shutdown.
	gctx, gcancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	lease, err := n.cfg.Client.Grant(gctx, ttl)
	gcancel()
	if err != nil {
		return fmt.Errorf("etcd: take a lease: %w", err)
	}
	s, err := concurrency.NewSession(n.cfg.Client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(context.Background()))
	if err != nil {
		return fmt.Errorf("etcd: keep the lease alive: %w", err)
	}
	info := NodeInfo{Name: n.cfg.Name, Address: n.cfg.Address, Started: n.started, Registered: time.Now(), MaxJobs: n.cfg.MaxJobs}
	val, _ := json.Marshal(info)
	key := n.cfg.Keys.Node(n.cfg.Name)
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	resp, err := n.cfg.Client.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(s.Lease()))).
		Commit()
	if err != nil {
		s.Close()
		return fmt.Errorf("etcd: register node %s: %w", n.cfg.Name, err)
	}
	if !resp.Succeeded {
		s.Close()
		return fmt.Errorf("a live node is already registered as %q: give each node its own -node-name (OPENDTS_NODE_NAME), or wait up to the lease TTL (%s) after that node stopped", n.cfg.Name, n.cfg.LeaseTTL)
	}
	n.mu.Lock()
	n.session = s
	n.mu.Unlock()
	return nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Start begins the node's work: watching claims, nodes and jobs, and
// claiming jobs that need an owner, which it hands to js.
func (n *Node) Start(js Jobs) {
	n.jobs = js
	n.ctx, n.cancel = context.WithCancel(context.Background())
	ready := make(chan struct{})
	n.loops.Add(3)
	go func() {
		defer n.loops.Done()
		n.watch(n.ctx, ready)
	}()
	<-ready
	go n.keepLease()
	go n.run()
}

// Leave stops claiming and takes the node out of the registry, so that
// the other nodes stop choosing it for work and claim its jobs the moment
// its runs release them. Call it before closing the job service; Close
// afterwards.
func (n *Node) Leave() {
	if n.cancel != nil {
		n.cancel()
		n.loops.Wait()
		n.cancel = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	if _, err := n.cfg.Client.Delete(ctx, n.cfg.Keys.Node(n.cfg.Name)); err != nil {
		n.log.Warn("leave the registry", "err", err)
	}
}

// Close stops claiming and gives the node's lease up: the claims still
// held vanish at once, so other nodes take those jobs over without waiting
// for the TTL. Close the job service first, so that no run still writes.
func (n *Node) Close() {
	if n.cancel != nil {
		n.cancel()
		n.loops.Wait()
		n.cancel = nil
	}
	n.mu.Lock()
	s := n.session
	n.session = nil
	n.mu.Unlock()
	if s != nil {
		// Close revokes the lease (bounded by the client's own timeout).
		s.Close()
	}
}

// Wake asks the node to look for jobs without an owner now.
func (n *Node) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Owner names the node that owns job id ("" when none).
func (n *Node) Owner(id string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.claims[id].node
}

// Owned counts the jobs this node owns.
func (n *Node) Owned() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.countLocked(n.cfg.Name)
}

func (n *Node) countLocked(name string) int {
	c := 0
	for _, ci := range n.claims {
		if ci.node == name {
			c++
		}
	}
	return c
}

// Nodes lists the live nodes by name, with the jobs each owns.
func (n *Node) Nodes() []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]NodeInfo, 0, len(n.nodes))
	for _, ni := range n.nodes {
		ni.Jobs = n.countLocked(ni.Name)
		out = append(out, ni)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}

// LeaseRemaining asks etcd how long a node's lease has left.
func (n *Node) LeaseRemaining(ctx context.Context, lease clientv3.LeaseID) (time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	r, err := n.cfg.Client.TimeToLive(rctx, lease)
	if err != nil {
		return 0, err
	}
	return time.Duration(r.TTL) * time.Second, nil
}

// Release ends claim c on job id, if it is still the job's claim: the
// job's run on this node ended. The node looks for work again, as it may
// have room for a job now.
func (n *Node) Release(id string, c jobs.Claim) {
	n.mu.Lock()
	n.cooldown[id] = time.Now().Add(releaseCooldown)
	n.mu.Unlock()
	n.release(id, c)
	n.Wake()
}

// releaseCooldown is how long this node waits before claiming again a job
// whose run here ended while the job still needs work; other nodes may
// take it meanwhile.
const releaseCooldown = 2 * time.Second

func (n *Node) release(id string, c jobs.Claim) {
	key := n.cfg.Keys.Claim(id)
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	_, err := n.cfg.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", c.Epoch)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		// reconcile tries again while the lease lives.
		n.log.Warn("release a job's claim", "job_id", id, "err", err)
		return
	}
	n.mu.Lock()
	if ci, ok := n.claims[id]; ok && ci.epoch == c.Epoch {
		delete(n.claims, id)
	}
	n.mu.Unlock()
}

// run is the node's loop: claim work when woken or every second. A lost
// lease is handled apart (keepLease): this loop may wait seconds on an
// etcd that does not answer, and the runs must stop the moment the lease
// is gone.
func (n *Node) run() {
	defer n.loops.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.wake:
		case <-tick.C:
		}
		n.claimWork(n.ctx)
	}
}

// keepLease stops the node's runs as soon as its lease is lost, and
// registers it again under a new one.
func (n *Node) keepLease() {
	defer n.loops.Done()
	for {
		n.mu.Lock()
		s := n.session
		n.mu.Unlock()
		if s == nil {
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-s.Done():
			n.rejoin()
		}
	}
}

// rejoin handles a lost lease: every claim of this node is gone (other
// nodes may own its jobs already), so its runs stop without writing more,
// and the node registers again under a new lease.
func (n *Node) rejoin() {
	stopped := n.jobs.Abandon()
	n.log.Warn("lost the etcd lease (this node was paused or cut off from etcd for longer than the lease TTL): stopped its jobs; other nodes take them over", "jobs_stopped", stopped)
	n.mu.Lock()
	old := n.session
	n.session = nil
	for id, ci := range n.claims {
		if ci.node == n.cfg.Name {
			delete(n.claims, id)
		}
	}
	n.mu.Unlock()
	var oldLease clientv3.LeaseID
	if old != nil {
		oldLease = old.Lease()
		old.Orphan()
	}
	for wait := 500 * time.Millisecond; n.ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		if oldLease != 0 {
			// etcd may still hold the old lease (a new leader extends
			// every lease it inherits): revoking it removes the old
			// claims and registration now rather than a TTL later.
			rctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
			_, err := n.cfg.Client.Revoke(rctx, oldLease)
			cancel()
			if err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
				oldLease = 0
			}
		}
		err := n.register(n.ctx)
		if err == nil {
			n.log.Info("registered again under a new lease")
			return
		}
		n.log.Warn("register again", "err", err)
		select {
		case <-n.ctx.Done():
		case <-time.After(wait):
		}
	}
}

// claimWork claims the active jobs nobody owns that fall to this node:
// those for which it is the least-loaded live node, and any left unowned
// for longer than ClaimDelay.
func (n *Node) claimWork(ctx context.Context) {
	n.mu.Lock()
	s := n.session
	n.mu.Unlock()
	if s == nil {
		return
	}
	list, err := n.jobs.ActiveJobs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("list the jobs that need work", "err", err)
		}
		return
	}
	n.reconcile(ctx, list)
	now := time.Now()
	seen := map[string]bool{}
	for _, j := range list {
		seen[j.ID] = true
		n.mu.Lock()
		_, owned := n.claims[j.ID]
		if owned {
			delete(n.unowned, j.ID)
			n.mu.Unlock()
			continue
		}
		if n.cfg.MaxJobs > 0 && n.countLocked(n.cfg.Name) >= n.cfg.MaxJobs {
			n.mu.Unlock()
			break
		}
		if until, ok := n.cooldown[j.ID]; ok && now.Before(until) {
			n.mu.Unlock()
			continue
		}
		since, ok := n.unowned[j.ID]
		if !ok {
			since = now
			n.unowned[j.ID] = now
		}
		mine := n.preferredLocked(j.ID) == n.cfg.Name || now.Sub(since) >= n.cfg.ClaimDelay
		n.mu.Unlock()
		if mine {
			n.claim(ctx, s, j.ID)
		}
	}
	n.mu.Lock()
	for id := range n.unowned {
		if !seen[id] {
			delete(n.unowned, id)
		}
	}
	for id, until := range n.cooldown {
		if now.After(until) {
			delete(n.cooldown, id)
		}
	}
	n.mu.Unlock()
}

// reconcile makes this node's claims and runs agree, in case a watch event
// or a release was lost (a watch replaced after a leader change, etcd
// briefly unreachable): a run whose job the active list shows stopping,
// completing, or no longer active follows its job again (a Stop, Complete
// or Delete sent to another node), and a claim with no run behind it is
// released. It reads nothing more than the list: a run whose job is as it
// should be costs no request.
func (n *Node) reconcile(ctx context.Context, active []*jobs.Job) {
	status := make(map[string]jobs.Status, len(active))
	for _, j := range active {
		status[j.ID] = j.Status
	}
	n.mu.Lock()
	mine := map[string]int64{}
	for id, ci := range n.claims {
		if ci.node == n.cfg.Name {
			mine[id] = ci.epoch
		}
	}
	n.mu.Unlock()
	for id, epoch := range mine {
		if n.jobs.HasRun(id) {
			if st, ok := status[id]; !ok || st == jobs.StatusStopping || st == jobs.StatusCompleting {
				n.jobs.Changed(ctx, id)
			}
		} else {
			n.release(id, jobs.Claim{Node: n.cfg.Name, Epoch: epoch})
		}
	}
}

// preferredLocked picks the node that should take job id: the live node
// with the fewest jobs that has room for one more; among equals, the one
// that job's id hashes highest with (so that nodes agree, and equal nodes
// share new jobs).
func (n *Node) preferredLocked(id string) string {
	best, bestLoad, bestHash := "", 0, uint64(0)
	for _, ni := range n.nodes {
		load := n.countLocked(ni.Name)
		if ni.MaxJobs > 0 && load >= ni.MaxJobs {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(id + "\x00" + ni.Name))
		hv := h.Sum64()
		if best == "" || load < bestLoad || (load == bestLoad && hv > bestHash) {
			best, bestLoad, bestHash = ni.Name, load, hv
		}
	}
	return best
}

// claim takes job id for this node if nobody holds it, and hands it to the
// job service. The claim key's creation revision is the epoch: etcd's
// revision only grows, so every later claim of any job has a larger one.
func (n *Node) claim(ctx context.Context, s *concurrency.Session, id string) {
	key := n.cfg.Keys.Claim(id)
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	resp, err := n.cfg.Client.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, n.cfg.Name, clientv3.WithLease(s.Lease()))).
		Commit()
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("claim a job", "job_id", id, "err", err)
		}
		return
	}
	if !resp.Succeeded {
		return
	}
	c := jobs.Claim{Node: n.cfg.Name, Epoch: resp.Header.Revision}
	n.mu.Lock()
	n.claims[id] = claimInfo{node: c.Node, epoch: c.Epoch}
	delete(n.unowned, id)
	n.mu.Unlock()
	ok, err := n.jobs.Adopt(ctx, id, c)
	if err != nil && !errors.Is(err, jobs.ErrShuttingDown) {
		n.log.Warn("start a claimed job", "job_id", id, "err", err)
	}
	if !ok {
		// Tried again at the next tick at the earliest: the job may still
		// be ending here.
		n.release(id, c)
	}
}

// LockTarget holds an etcd lock named after a target instance, under the
// node's lease (so a node that dies holding it frees it within the TTL),
// until unlock is called.
func (n *Node) LockTarget(ctx context.Context, target string) (func(), error) {
	n.mu.Lock()
	s := n.session
	n.mu.Unlock()
	if s == nil {
		return nil, errors.New("this node has no etcd lease right now (etcd unreachable?)")
	}
	m := concurrency.NewMutex(s, n.cfg.Keys.TargetLock(target))
	lctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	if err := m.Lock(lctx); err != nil {
		return nil, fmt.Errorf("etcd: lock target %s: %w", target, err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		if err := m.Unlock(uctx); err != nil {
			n.log.Warn("unlock a target", "target", target, "err", err)
		}
	}, nil
}
