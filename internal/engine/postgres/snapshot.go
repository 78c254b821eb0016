package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// snapshot is an exported snapshot of one source database, alive while its
// keeper session stays in its transaction. Every worker that reads the
// database imports it (SET TRANSACTION SNAPSHOT), and pg_dump reads the
// structure from it (--snapshot), so the rows and the DDL are of one
// moment.
type snapshot struct {
	db     string
	id     string
	keeper *pgx.Conn
	// repl keeps a replication slot's exported snapshot (full +
	// incremental jobs) instead of keeper; lsn is the slot's consistent
	// point: the changes committed from there on are not in the snapshot.
	repl *pgconn.PgConn
	lsn  pglogrepl.LSN
}

// takeSnapshot opens a keeper session in db and exports its snapshot. The
// keeper reads the inventory in the same transaction: the tables planned
// are those the snapshot sees.
func (m *migration) takeSnapshot(ctx context.Context, d *database) (*snapshot, error) {
	if m.spec.MigrateType.Incremental() {
		return m.takeSlotSnapshot(ctx, d)
	}
	c, err := m.e.connect(ctx, m.spec.Source, "source", d.Name)
	if err != nil {
		return nil, err
	}
	s := &snapshot{db: d.Name, keeper: c}
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		s.close()
		return nil, fmt.Errorf("source %s: begin the snapshot: %w", d.Name, err)
	}
	if err := c.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&s.id); err != nil {
		s.close()
		return nil, fmt.Errorf("source %s: export a snapshot: %w", d.Name, err)
	}
	d.Relations, d.Sequences, d.MatViews = nil, nil, nil
	if err := inventory(ctx, c, d); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// errSnapshotLost says a keeper session is gone (the source restarted, or
// the connection broke): its snapshot cannot be imported any more.
var errSnapshotLost = errors.New("the source's snapshot is gone with its session")

// snapshotsAlive reports whether every keeper session still answers.
func (m *migration) snapshotsAlive(ctx context.Context) bool {
	// Workers ask at once; a session serves one at a time.
	m.keeperMu.Lock()
	defer m.keeperMu.Unlock()
	for _, s := range m.snaps {
		if s.repl != nil {
			// A replication session cannot be pinged without losing its
			// snapshot: a failed import says it is gone instead.
			if s.repl.IsClosed() {
				return false
			}
			continue
		}
		if s.keeper == nil || s.keeper.IsClosed() {
			return false
		}
		if err := s.keeper.Ping(ctx); err != nil {
			return false
		}
	}
	return true
}

func (s *snapshot) close() {
	if s == nil {
		return
	}
	if s.keeper != nil {
		closeQuietly(s.keeper)
		s.keeper = nil
	}
	if s.repl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.repl.Close(ctx)
		cancel()
		s.repl = nil
	}
}

// takeSlotSnapshot takes the snapshot of a full + incremental job: the
// first one from the job's own slot, created with the publication; a
// resumed copy's from a temporary slot, whose consistent point is the
// exact boundary of what the new snapshot holds.
func (m *migration) takeSlotSnapshot(ctx context.Context, d *database) (*snapshot, error) {
	name := slotName(m.spec.JobID)
	first := m.state.SlotLSN == 0
	if first {
		// The publication exists before the slot: pgoutput looks it up as
		// of each change it decodes.
		c, err := m.e.connect(ctx, m.spec.Source, "source", d.Name)
		if err != nil {
			return nil, err
		}
		d.Relations, d.Sequences, d.MatViews = nil, nil, nil
		err = inventory(ctx, c, d)
		if err == nil {
			m.state.DDLCapture, err = setupDDLCapture(ctx, c)
		}
		if err == nil {
			err = m.createPublication(ctx, c, d)
		}
		closeQuietly(c)
		if err != nil {
			return nil, err
		}
	} else {
		// A name of this attempt's own: an orphaned session of an
		// earlier run may still hold a temporary slot of its own.
		suffix := fmt.Sprintf("_r%d", time.Now().UnixNano()%1_000_000_000)
		name = name[:min(len(name), 63-len(suffix))] + suffix
	}
	rc, res, err := m.createSlot(ctx, d.Name, name, !first)
	if err != nil {
		return nil, err
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		rc.Close(ctx)
		return nil, fmt.Errorf("source %s: slot %s: %w", d.Name, name, err)
	}
	s := &snapshot{db: d.Name, id: res.SnapshotName, repl: rc, lsn: lsn}
	if first {
		m.state.SlotLSN = uint64(lsn)
	}
	// The inventory as the snapshot sees it.
	c, err := m.e.connect(ctx, m.spec.Source, "source", d.Name)
	if err != nil {
		s.close()
		return nil, err
	}
	defer closeQuietly(c)
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err == nil {
		_, err = c.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(s.id))
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("source %s: import the slot's snapshot: %w", d.Name, err)
	}
	d.Relations, d.Sequences, d.MatViews = nil, nil, nil
	if err := inventory(ctx, c, d); err != nil {
		s.close()
		return nil, err
	}
	m.e.cfg.Logger.Info("replication slot created with its snapshot", "job_id", m.spec.JobID, "database", d.Name,
		"slot", name, "consistent_point", res.ConsistentPoint)
	return s, nil
}

// takeSnapshots takes one snapshot per database, one after the other
// before any row moves, unless this run has them already.
func (m *migration) takeSnapshots(ctx context.Context) error {
	if m.snaps != nil {
		return nil
	}
	snaps := map[string]*snapshot{}
	for _, d := range m.dbs {
		s, err := m.takeSnapshot(ctx, d)
		if err != nil {
			for _, s := range snaps {
				s.close()
			}
			return err
		}
		snaps[d.Name] = s
	}
	m.snaps = snaps
	return nil
}

func (m *migration) closeSnapshots() {
	for _, s := range m.snaps {
		s.close()
	}
	m.snaps = nil
}

// beginInSnapshot starts a read-only transaction on c that sees the
// database's snapshot, when this run has one; otherwise one of its own.
func (m *migration) beginInSnapshot(ctx context.Context, c *pgx.Conn, db string) error {
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return err
	}
	if s := m.snaps[db]; s != nil {
		if _, err := c.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(s.id)); err != nil {
			if sqlState(err) == "22023" { // invalid snapshot identifier: its session is gone
				return fmt.Errorf("%w (%v)", errSnapshotLost, err)
			}
			return fmt.Errorf("import the snapshot: %w", err)
		}
	}
	return nil
}
