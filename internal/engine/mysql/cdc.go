package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// The incremental phase of a full + incremental job, the family's
// engine.ChangeStream: it reads the source's binlog from the snapshot's
// position (cdc_reader.go) and applies the changes to the selected objects
// in groups of source transactions (cdc_flow.go, cdc_group.go), each group
// one target transaction with the position reached written in it. A
// restart resumes from the last committed group: nothing lost, nothing
// applied twice.
//
// opendts owns the reconnects: on any stream error Run returns, and the
// driver calls it again after Reconnect; it starts from the last committed
// position, never in the middle of a transaction.

const binlogPositionsTable = "`" + checkpointDB + "`.`binlog_positions`"

var binlogPositionsDDL = "CREATE TABLE IF NOT EXISTS " + binlogPositionsTable + " (" +
	"job_id VARCHAR(64) NOT NULL PRIMARY KEY, file VARCHAR(255) NOT NULL, pos BIGINT UNSIGNED NOT NULL, " +
	"updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"

const savePositionSQL = "INSERT INTO " + binlogPositionsTable + " (job_id, file, pos) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos)"

type incremental struct {
	m      *migration
	tables map[string]*cdcTable
	// applied is written by the stream and read by the lag watcher.
	mu      sync.Mutex
	applied position
	// lastEvent is the source time of the last event read; groupSince and
	// inflightSince that of the first transaction of the group being
	// filled and of the one being applied (0: none). The lag counts from
	// the oldest change read and not applied.
	lastEvent     atomic.Int64
	groupSince    atomic.Int64
	inflightSince atomic.Int64

	// Source transactions are applied in groups (see cdc_group.go): the
	// stream fills one while the group before it is applied, so reading
	// and decoding the binlog overlap with the target's work. inflight
	// carries the result of the group being applied, nil when none is.
	apply    *sql.DB
	maxStmt  int
	group    *group
	inflight chan error
	// applyCtx is the job's: a stream ending must not cut short a group
	// being applied, a stop of the job does.
	applyCtx context.Context
	// loadData: the target takes LOAD DATA LOCAL (local_infile), which
	// large folded batches are written with (cdc_load.go).
	loadData bool
	// txConn holds the target transaction that a source transaction too
	// big for one group is written into piece by piece (see spill); nil
	// between groups. Only the group being applied uses it.
	txConn *sql.Conn
	// openTxn: the source transaction being read has pieces on the target
	// already (see spill). txOpen: the target transaction those pieces
	// went into has not been handed the group that commits it; until then
	// no position moves past them. Both belong to the stream's goroutine.
	openTxn, txOpen bool
	// runs counts calls of Run: a restarted stream may replay a DDL.
	runs int
	// replaying is set from a stream's start to its first DDL, which may
	// have been applied already before a crash.
	replaying bool
	// since: tables copied from a later snapshot than the stream's start,
	// whose changes up to that snapshot are in their rows already.
	since map[string]position
	// savedPos is the position last written to the target, and when.
	savedMu  sync.Mutex
	savedPos position
	savedAt  time.Time
}

// saved records a position written to the target.
func (inc *incremental) saved(p position) {
	inc.savedMu.Lock()
	inc.savedPos, inc.savedAt = p, time.Now()
	inc.savedMu.Unlock()
}

// OpenStream prepares the incremental phase: the position table on the
// target, the connection that applies, and where to start.
func (m *migration) OpenStream(ctx context.Context) (engine.ChangeStream, error) {
	if _, err := m.dst.ExecContext(ctx, binlogPositionsDDL); err != nil {
		return nil, fmt.Errorf("create the binlog checkpoint table on the target: %w", err)
	}
	// Unlike the bulk copy, applying changes keeps the checks on: the
	// binlog does not carry what ON DELETE/UPDATE CASCADE did, the target
	// must do it, and secondary unique keys must hold.
	applyVars := map[string]string{"foreign_key_checks": "1", "unique_checks": "1"}
	for k, v := range m.targetVars {
		applyVars[k] = v
	}
	// One connection: each group is one transaction, applied in order.
	apply, err := m.e.openPool(ctx, m.spec.Target, "target", 1, m.writerVars(applyVars), true)
	if err != nil {
		return nil, err
	}
	if m.spec.Epoch > 0 {
		// Replaced before the server's wait_timeout closes it (fence.go).
		apply.SetConnMaxIdleTime(m.e.cfg.FencedIdleTimeout / 2)
	}
	var maxPacket int
	if err := apply.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		apply.Close()
		return nil, fmt.Errorf("read the target's max_allowed_packet: %w", err)
	}
	var localInfile int
	_ = apply.QueryRowContext(ctx, "SELECT @@GLOBAL.local_infile").Scan(&localInfile)
	inc := &incremental{m: m, tables: map[string]*cdcTable{}, apply: apply, group: newGroup(),
		maxStmt: max(min(1<<20, maxPacket/4), 16<<10), since: map[string]position{},
		loadData: localInfile == 1 && !m.e.cfg.DisableLoadData}
	for id, p := range m.state.Since {
		inc.since[id] = position{File: p.File, Pos: p.Pos}
	}
	var file string
	var pos uint64
	err = m.dst.QueryRowContext(ctx, "SELECT file, pos FROM "+binlogPositionsTable+" WHERE job_id = ?", m.spec.JobID).Scan(&file, &pos)
	switch {
	case err == nil:
		inc.setApplied(position{File: file, Pos: pos})
	case m.state.Snapshot == nil || m.state.Snapshot.File == "":
		apply.Close()
		return nil, errors.New("the snapshot has no binlog position: the source user needs REPLICATION CLIENT (BINLOG MONITOR) and the source a binlog")
	default:
		inc.setApplied(position{File: m.state.Snapshot.File, Pos: m.state.Snapshot.Pos})
	}
	m.e.cfg.Logger.Info("incremental phase from the binlog", "job_id", m.spec.JobID, "file", inc.appliedPos().File, "pos", inc.appliedPos().Pos)
	return inc, nil
}

// Close releases the applying connection.
func (inc *incremental) Close() { inc.apply.Close() }

// Run reads the binlog from the last committed position and applies it
// until ctl says stop. Errors no restart cures are engine.Permanent.
func (inc *incremental) Run(ctx context.Context, ctl *engine.StreamControl) error {
	m := inc.m
	// The saved position wins when it is ahead: a commit whose answer
	// was lost still happened.
	var file string
	var pos uint64
	if err := m.dst.QueryRowContext(ctx, "SELECT file, pos FROM "+binlogPositionsTable+" WHERE job_id = ?", m.spec.JobID).Scan(&file, &pos); err == nil {
		if saved := (position{File: file, Pos: pos}); inc.appliedPos().less(saved) {
			inc.setApplied(saved)
		}
	}
	inc.replaying = inc.runs > 0 || m.spec.Resume
	inc.runs++
	if err := m.binlogStillThere(ctx, inc.appliedPos()); err != nil {
		return engine.Permanent(err)
	}
	err := inc.stream(ctx, ctl)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if isPurged(err) {
		return engine.Permanent(fmt.Errorf("the source no longer has the binlog at %s:%d (purged?): %w; raise binlog_expire_logs_seconds / expire_logs_days and start the job again", inc.appliedPos().File, inc.appliedPos().Pos, err))
	}
	var applyErr *applyError
	if errors.As(err, &applyErr) && !retryable(err) {
		return engine.Permanent(err)
	}
	return err
}

// Reconnect waits until both servers answer again.
func (inc *incremental) Reconnect(ctx context.Context) error {
	m := inc.m
	return m.e.retry(ctx, "reconnect to the source and the target", func() error {
		for _, db := range []*sql.DB{m.src, m.dst} {
			if err := db.PingContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// Applied is the position committed on the target.
func (inc *incremental) Applied() engine.Position { return inc.appliedPos() }

// SourcePosition is the source's binlog position now.
func (inc *incremental) SourcePosition(ctx context.Context) (engine.Position, error) {
	return inc.m.masterPos(ctx)
}

func (inc *incremental) setApplied(p position) {
	inc.mu.Lock()
	inc.applied = p
	inc.mu.Unlock()
}

// advance moves the position past an event outside any transaction: the
// group's end when changes wait to be applied, else the applied position.
func (inc *incremental) advance(next position) {
	inc.group.setEnd(next)
	if inc.group.empty() && inc.inflight == nil && !inc.txOpen {
		inc.setApplied(next)
	}
}

// reached is the position the job will have applied once everything read
// is: the end of the last transaction read.
func (inc *incremental) reached() position {
	if inc.group.hasEnd {
		return inc.group.end
	}
	return inc.appliedPos()
}

func (inc *incremental) appliedPos() position {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	return inc.applied
}

// applyError is a change the target refused.
type applyError struct{ err error }

func (e *applyError) Error() string { return e.err.Error() }
func (e *applyError) Unwrap() error { return e.err }
