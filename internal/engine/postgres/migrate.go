package postgres

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// migration is one run of a job: the units the driver calls in order.
type migration struct {
	e    *Engine
	spec engine.Spec
	cp   *checkpoint
	// fence is the run's epoch in cluster mode (fence.go).
	fence *fence
	state *jobState

	dbs []*database
	// snaps are this run's snapshots, by database, taken by the first
	// unit that needs them and kept until the rows are copied.
	snaps    map[string]*snapshot
	keeperMu sync.Mutex
	// workDir holds this run's schema dumps; dumps names them by
	// database.
	workDir string
	dumps   map[string][]string
	// roleModes caches roleMode by database: keep owners, keep grants.
	roleModes map[string][2]bool
}

var _ engine.Migration = (*migration)(nil)

// Open checks that both servers answer and opens the job's checkpoint on
// the target.
func (e *Engine) Open(ctx context.Context, spec engine.Spec) (engine.Migration, error) {
	for _, side := range []struct {
		name string
		ep   engine.Endpoint
	}{{"source", spec.Source}, {"target", spec.Target}} {
		c, err := e.connect(ctx, side.ep, side.name, "")
		if err != nil {
			return nil, err
		}
		closeQuietly(c)
	}
	f := &fence{jobID: spec.JobID, epoch: spec.Epoch, log: e.cfg.Logger}
	if f.on() {
		// The job's epoch is recorded with its state, in the maintenance
		// database, before anything else.
		c, err := e.connect(ctx, spec.Target, "target", "")
		if err != nil {
			return nil, err
		}
		err = f.claim(ctx, c)
		closeQuietly(c)
		if err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(e.cfg.WorkDir, "opendts-pg-")
	if err != nil {
		return nil, fmt.Errorf("make a work directory for the schema dumps: %w", err)
	}
	return &migration{
		e: e, spec: spec, fence: f,
		cp:        &checkpoint{e: e, ep: spec.Target, jobID: spec.JobID, fence: f},
		workDir:   dir,
		dumps:     map[string][]string{},
		roleModes: map[string][2]bool{},
	}, nil
}

// Close ends the snapshots and removes the run's dumps.
func (m *migration) Close() {
	m.closeSnapshots()
	os.RemoveAll(m.workDir)
}

// Retry is the engine's retry window, for the driver's restarts.
func (m *migration) Retry() engine.RetryPolicy {
	return engine.RetryPolicy{For: m.e.cfg.RetryFor, Logger: m.e.cfg.Logger}
}

// LoadPhase reads the job's state from the target.
func (m *migration) LoadPhase(ctx context.Context) (engine.Phase, error) {
	st, err := m.cp.load(ctx)
	if err != nil {
		return "", err
	}
	if st == nil {
		st = &jobState{}
	}
	m.state = st
	return st.Phase, nil
}

// SavePhase records the phase reached with the rest of the state.
func (m *migration) SavePhase(ctx context.Context, p engine.Phase) error {
	m.state.Phase = p
	return m.cp.save(ctx, m.state)
}

// Forget drops what an earlier run of the job left: its state and the
// chunk marks in the databases it named.
func (m *migration) Forget(ctx context.Context) error {
	st, err := m.cp.load(ctx)
	if err != nil {
		return err
	}
	if st != nil {
		// The slot, the publication and the marks go outside any
		// transaction of the fence: it is read right before.
		if err := m.checkFence(ctx, "dropping what an earlier run left"); err != nil {
			return err
		}
		if err := m.dropReplication(ctx, st.Databases, st.DDLCapture); err != nil {
			return err
		}
		for _, db := range st.Databases {
			if err := m.withTarget(ctx, db, func(c *pgx.Conn) error { return dropMarks(ctx, c, m.spec.JobID) }); err != nil && sqlState(err) != "3D000" {
				return err
			}
		}
	}
	return m.cp.forget(ctx)
}

// Finish drops the chunk marks of a job that succeeded, keeping its
// "done" state (and the read-only settings to give back).
func (m *migration) Finish(ctx context.Context) error {
	if err := m.checkFence(ctx, "finishing the job"); err != nil {
		return err
	}
	for _, db := range m.state.Databases {
		if err := m.withTarget(ctx, db, func(c *pgx.Conn) error { return dropMarks(ctx, c, m.spec.JobID) }); err != nil {
			return err
		}
	}
	if m.spec.MigrateType.Incremental() {
		if err := m.dropReplication(ctx, m.state.Databases, m.state.DDLCapture); err != nil {
			return err
		}
	}
	m.state.Plan, m.state.Since = nil, nil
	return m.cp.save(ctx, m.state)
}

// Prepare resolves the selection on the source.
func (m *migration) Prepare(ctx context.Context) error {
	c, err := m.e.connect(ctx, m.spec.Source, "source", "")
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	if m.dbs, err = m.e.listDatabases(ctx, m.spec, c); err != nil {
		return engine.Permanent(err)
	}
	if m.spec.MigrateType.Incremental() && len(m.dbs) != 1 {
		return engine.Permanent(fmt.Errorf("a full + incremental PostgreSQL job replicates one database (one replication slot); this one selects %d: create one job per database", len(m.dbs)))
	}
	names := make([]string, len(m.dbs))
	for i, d := range m.dbs {
		names[i] = d.Name
	}
	m.state.Databases = names
	return nil
}

// FinalObjects sets the sequences, which logical decoding does not carry,
// to the source's values after the last change.
func (m *migration) FinalObjects(ctx context.Context) error {
	for _, d := range m.dbs {
		if d.Relations == nil && d.Sequences == nil {
			if err := m.readInventory(ctx, d); err != nil {
				return err
			}
		}
	}
	return m.setSequences(ctx)
}
