package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// migration is one run of a Redis job.
type migration struct {
	e    *Engine
	spec engine.Spec
	log  *slog.Logger
	src  *goredis.Client // database 0 (of the first master for a cluster)
	dst  goredis.UniversalClient
	// srcNodes are the source's masters, each read on its own; one for
	// a standalone source.
	srcNodes   []engine.Endpoint
	srcCluster bool
	dstCluster bool
	dbs        dbSet
	ext        externParams
	cp         *checkpoint
	// fence is the run's epoch in cluster mode (fence.go).
	fence *fence
	// origSource holds the source settings to put back when the job
	// succeeds, by master address.
	origSource map[string]map[string]string
}

var _ engine.Migration = (*migration)(nil)

// Open connects to the job's servers.
func (e *Engine) Open(ctx context.Context, spec engine.Spec) (engine.Migration, error) {
	dbs, err := selection(spec)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	ext, err := parseExtern(spec.ExternParams)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	srcNodes, err := e.masters(ctx, spec.Source)
	if err != nil {
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	dstNodes, err := e.masters(ctx, spec.Target)
	if err != nil {
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	m := &migration{e: e, spec: spec, log: e.cfg.Logger, dbs: dbs, ext: ext,
		srcNodes: srcNodes, srcCluster: srcNodes != nil, dstCluster: dstNodes != nil}
	if m.srcCluster || m.dstCluster {
		if !dbs.all && (len(dbs.dbs) != 1 || dbs.dbs[0] != 0) {
			return nil, engine.Permanent(errors.New("a Redis cluster has database 0 only: select database 0"))
		}
		m.dbs = dbSet{dbs: []int{0}}
	}
	if !m.srcCluster {
		m.srcNodes = []engine.Endpoint{spec.Source}
	}
	m.src = e.client(m.srcNodes[0], 0)
	if m.dstCluster {
		m.dst = e.clusterClient(spec.Target)
	} else {
		m.dst = e.client(spec.Target, 0)
	}
	m.fence = &fence{jobID: spec.JobID, key: fenceKey(spec.JobID), epoch: spec.Epoch, log: m.log}
	m.cp = &checkpoint{c: m.dst, key: checkpointKey(spec.JobID), fence: m.fence}
	if err := m.fence.claim(ctx, m.dst); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close leaves the source's settings as ExternParams set them: a run
// ends on a shutdown too, and the run that resumes needs the backlog
// (shrinking it drops what opendts has not read yet). The DBA's values
// come back when the job succeeds (Finish); they stay saved in the
// checkpoint meanwhile.
func (m *migration) Close() {
	m.src.Close()
	m.dst.Close()
}

func (m *migration) Retry() engine.RetryPolicy {
	return engine.RetryPolicy{For: m.e.cfg.RetryFor, Logger: m.log}
}

func (m *migration) LoadPhase(ctx context.Context) (engine.Phase, error) {
	f, err := m.cp.get(ctx)
	if err != nil {
		return "", err
	}
	return engine.Phase(f[fieldPhase]), nil
}

func (m *migration) SavePhase(ctx context.Context, p engine.Phase) error {
	return m.cp.set(ctx, fieldPhase, string(p))
}

func (m *migration) Forget(ctx context.Context) error {
	// Settings saved by a run that changed the source are kept: they are
	// the DBA's, and the source may still hold opendts's.
	orig, err := m.cp.sourceConfig(ctx)
	if err != nil {
		return err
	}
	if err := m.cp.drop(ctx); err != nil {
		return fmt.Errorf("drop the checkpoint on the target: %w", err)
	}
	if err := m.dropSlotCheckpoints(ctx); err != nil {
		return fmt.Errorf("drop the slots' checkpoints on the target: %w", err)
	}
	if len(orig) > 0 {
		return m.cp.saveSourceConfig(ctx, orig)
	}
	return nil
}

// Finish keeps only the phase: a done job needs nothing else.
func (m *migration) Finish(ctx context.Context) error {
	// The source's settings and the slot checkpoints change outside any
	// transaction of the fence: it is read right before.
	if err := m.fence.check(ctx, m.dst, "finishing the job"); err != nil {
		return err
	}
	if err := m.restoreSourceNow(ctx); err != nil {
		return err
	}
	if err := m.dropSlotCheckpoints(ctx); err != nil {
		return err
	}
	if err := m.cp.drop(ctx); err != nil {
		return err
	}
	return m.cp.set(ctx, fieldPhase, string(engine.PhaseDone))
}

func (m *migration) Prepare(ctx context.Context) error { return nil }

// HoldReadOnly: Redis has no read-only switch for ordinary users that
// leaves the replication writes through; the check says so.
func (m *migration) HoldReadOnly(ctx context.Context) (func(), error) {
	return func() {}, nil
}

func (m *migration) RestoreReadOnly(ctx context.Context) error { return nil }

// Structure: Redis keys carry their own structure.
func (m *migration) Structure(ctx context.Context, progress func(done, total int)) error {
	progress(1, 1)
	return nil
}

func (m *migration) Objects(ctx context.Context, active bool) error { return nil }

func (m *migration) FinalObjects(ctx context.Context) error { return nil }

// Copy takes a full resync from the source and applies its RDB.
func (m *migration) Copy(ctx context.Context, report engine.CopyReport) error {
	if err := m.applySourceSettings(ctx); err != nil {
		return err
	}
	f, err := m.cp.get(ctx)
	if err != nil {
		return err
	}
	// A copy that was interrupted left part of an RDB on the target: it
	// starts again from empty databases.
	clear := f[fieldCopying] != "" || m.ext.WriteMode == writeClear
	// The shards' addresses as the copy found them: the stream reads the
	// same shards.
	addrs := make([]string, len(m.srcNodes))
	for i, n := range m.srcNodes {
		addrs[i] = n.Address()
	}
	if err := m.cp.set(ctx, fieldShards, strings.Join(addrs, ",")); err != nil {
		return err
	}
	for i, node := range m.srcNodes {
		if i > 0 {
			report, clear = nil, false
		}
		if _, err := m.fullSync(ctx, node, shardSuffix(i), report, clear); err != nil {
			return err
		}
	}
	return nil
}

// applySourceSettings sets ExternParams's values on the source, saving
// the DBA's in the checkpoint first so that a crash cannot lose them.
func (m *migration) applySourceSettings(ctx context.Context) error {
	if m.origSource != nil {
		return nil
	}
	saved, err := m.cp.sourceConfig(ctx)
	if err != nil {
		return err
	}
	all := map[string]map[string]string{}
	var errs []error
	for _, node := range m.srcNodes {
		c := m.e.client(node, 0)
		orig, err := applySource(ctx, c, m.ext, saved[node.Address()])
		c.Close()
		if len(orig) > 0 {
			all[node.Address()] = orig
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(all) > 0 {
		if err := m.cp.saveSourceConfig(ctx, all); err != nil {
			errs = append(errs, err)
		}
		m.origSource = all
	}
	return errors.Join(errs...)
}

func (m *migration) restoreSourceNow(ctx context.Context) error {
	orig := m.origSource
	if orig == nil {
		var err error
		if orig, err = m.cp.sourceConfig(ctx); err != nil {
			return err
		}
	}
	for addr, settings := range orig {
		ep, err := withAddr(m.spec.Source, addr)
		if err != nil {
			return err
		}
		c := m.e.client(ep, 0)
		err = restoreSource(ctx, c, settings)
		c.Close()
		if err != nil {
			return err
		}
	}
	m.origSource = nil
	return nil
}
