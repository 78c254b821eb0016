package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
)

// Store is the job store of cluster mode: a jobs.Store on etcd that every
// node reads and writes.
//
// A job is three keys (keys.go): the job document (JSON, the same as the
// SQLite store's `doc`, without passwords), its passwords sealed with the
// master key, and the progress a running migration reports often. They
// are written together in one transaction per CreateJob, UpdateJob and
// DeleteJob, each of which also rewrites Keys.Changed.
//
// Writes between nodes: UpdateJob compares the job key's ModRevision with
// the Job.Revision read (jobs.ErrConflict), and writes made under a claim
// (jobs.WithClaim) compare the claim key's CreateRevision, the claim's
// epoch (jobs.ErrNotOwner), in the same transaction as the write.
//
// Reads of one job go to etcd. ListJobs, CountByStatus and WritingInto
// are answered from a copy of every job (without passwords) in memory,
// kept by one watch of the prefix (store_cache.go); each first waits until
// that copy holds every write committed before it began.
//
// Every request to etcd is bounded by the request timeout, so that calls
// fail with an error saying the etcd cluster is unavailable when it has
// lost its majority, instead of hanging.
type Store struct {
	c       *clientv3.Client
	keys    Keys
	box     *secret.Box
	timeout time.Duration
	log     *slog.Logger

	// The watcher's life: Close cancels it and waits for done.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	closed sync.Once

	cache cache
}

var _ jobs.Store = (*Store)(nil)

// StoreOption changes a default of OpenStore.
type StoreOption func(*Store)

// DefaultRequestTimeout bounds each request to etcd.
const DefaultRequestTimeout = 5 * time.Second

// WithRequestTimeout bounds each request to etcd (and a list's wait for
// the watched copy to catch up) by d instead of DefaultRequestTimeout.
func WithRequestTimeout(d time.Duration) StoreOption {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithLogger sets where the store logs a broken watch and its recovery
// (slog.Default() otherwise).
func WithLogger(l *slog.Logger) StoreOption {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// keyCheckPlain is what the key check seals: nothing secret, only proof
// that a node's master key is the cluster's.
const keyCheckPlain = "opendts master key check"

// ErrMasterKeyMismatch: this node's master key is not the cluster's.
var ErrMasterKeyMismatch = errors.New("this node's master key cannot open the cluster's sealed passwords: every node must be started with the same OPENDTS_MASTER_KEY (or master.key file) as the first node")

// OpenStore checks this node's master key against the cluster's (the first
// node to open a store under keys.Prefix sets it), reads every job into
// memory and starts watching for changes. The client stays the caller's:
// Close does not close it.
func OpenStore(ctx context.Context, client *clientv3.Client, keys Keys, box *secret.Box, opts ...StoreOption) (*Store, error) {
	if client == nil || box == nil {
		return nil, errors.New("cluster store: an etcd client and a master key are needed")
	}
	if keys.Prefix == "" {
		keys = NewKeys("")
	}
	s := &Store{c: client, keys: keys, box: box, timeout: DefaultRequestTimeout, log: slog.Default(), done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if err := s.checkKey(ctx); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cache.init()
	if err := s.relist(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	go s.watch()
	return s, nil
}

// checkKey creates the key check when absent (one transaction: of two
// first nodes, one wins and the other checks against it), else opens it.
func (s *Store) checkKey(ctx context.Context) error {
	sealed, err := s.box.Seal(keyCheckPlain)
	if err != nil {
		return fmt.Errorf("cluster store: seal the master key check: %w", err)
	}
	k := s.keys.KeyCheck()
	rctx, cancel := s.bound(ctx)
	defer cancel()
	resp, err := s.c.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, sealed)).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return s.etcdErr(ctx, rctx, "check the master key", err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		// Deleted between the compare and the read cannot happen in one
		// transaction; an empty answer is a damaged cluster.
		return errors.New("cluster store: the master key check vanished while read")
	}
	plain, err := s.box.Open(string(kvs[0].Value))
	if err != nil || plain != keyCheckPlain {
		return ErrMasterKeyMismatch
	}
	return nil
}

// Close stops the watch. The client stays open.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.cancel()
		<-s.done
	})
	return nil
}

// Ping checks that etcd answers a linearizable read (which needs a
// majority of its members), for readiness.
func (s *Store) Ping(ctx context.Context) error {
	rctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.c.Get(rctx, s.keys.KeyCheck(), clientv3.WithCountOnly()); err != nil {
		return s.etcdErr(ctx, rctx, "ping", err)
	}
	return nil
}

// bound is ctx limited by the request timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// etcdErr words a failed etcd request made under rctx (ctx bounded by the
// request timeout). When the caller's own ctx ended, that is the cause;
// when etcd did not answer in time or no member could serve the request,
// the message says the cluster is unavailable (the job service wraps it
// into jobs.ErrStore). Errors never carry values.
func (s *Store) etcdErr(ctx, rctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("etcd %s: %w", op, ctx.Err())
	}
	// The server words a read it could not serve in time as an error of
	// code Unknown: the expired deadline is what tells.
	if rctx.Err() != nil || unavailable(err) {
		return fmt.Errorf("etcd %s: the etcd cluster is unavailable (no answer within %s; is a majority of its members up?): %w (%w)", op, s.timeout, jobs.ErrStoreUnavailable, err)
	}
	return fmt.Errorf("etcd %s: %w", op, err)
}

// unavailable reports whether err means etcd could not serve the request
// (no leader, no member reachable) rather than refused it.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	// The server's own errors ("etcdserver: request timed out", "no
	// leader") are typed with their gRPC code.
	var ec interface{ Code() codes.Code }
	if errors.As(err, &ec) {
		return ec.Code() == codes.Unavailable || ec.Code() == codes.DeadlineExceeded
	}
	return false
}
