package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomysqlmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gmysql "github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// The incremental phase of a full + incremental job: it reads the source's
// binlog from the snapshot's position and applies the changes to the
// selected objects, one source transaction per target transaction, with
// the position reached written in that same transaction. A restart resumes
// from the last committed transaction: nothing lost, nothing applied twice.
//
// opendts owns the reconnects: on any stream error it drops the syncer and
// starts again from its last committed position, never in the middle of a
// transaction.

const binlogPositionsTable = "`" + checkpointDB + "`.`binlog_positions`"

var binlogPositionsDDL = "CREATE TABLE IF NOT EXISTS " + binlogPositionsTable + " (" +
	"job_id VARCHAR(64) NOT NULL PRIMARY KEY, file VARCHAR(255) NOT NULL, pos BIGINT UNSIGNED NOT NULL, " +
	"updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"

const savePositionSQL = "INSERT INTO " + binlogPositionsTable + " (job_id, file, pos) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos)"

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}
func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }

// binlogPos orders positions: file names of one server sort in order.
type binlogPos struct {
	File string
	Pos  uint64
}

func (p binlogPos) less(q binlogPos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	return p.Pos < q.Pos
}

type incremental struct {
	m      *migration
	tables map[string]*cdcTable
	// applied is written by the stream and read by the lag watcher.
	mu      sync.Mutex
	applied binlogPos
	// lastEvent is the source time of the last event read; groupSince and
	// inflightSince that of the first transaction of the group being
	// filled and of the one being applied (0: none). The lag counts from
	// the oldest change read and not applied.
	lastEvent     atomic.Int64
	groupSince    atomic.Int64
	inflightSince atomic.Int64
	caughtUp      bool

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
	// completeMode is the CompleteMigrateJob request being carried out.
	completeMode string
	// replaying is set from a stream's start to its first DDL, which may
	// have been applied already before a crash.
	replaying bool
	// since: tables copied from a later snapshot than the stream's start,
	// whose changes up to that snapshot are in their rows already.
	since map[string]binlogPos
	// savedPos is the position last written to the target, and when.
	savedMu  sync.Mutex
	savedPos binlogPos
	savedAt  time.Time
}

// saved records a position written to the target.
func (inc *incremental) saved(p binlogPos) {
	inc.savedMu.Lock()
	inc.savedPos, inc.savedAt = p, time.Now()
	inc.savedMu.Unlock()
}

// keepSaved writes the applied position, at most once a second, when it
// moved on without changes to apply (busy unselected tables): a restart
// then resumes near it, not from a binlog the source may have purged.
func (inc *incremental) keepSaved(ctx context.Context) error {
	if !inc.group.empty() || inc.inflight != nil {
		return nil
	}
	p := inc.appliedPos()
	inc.savedMu.Lock()
	due := p != inc.savedPos && time.Since(inc.savedAt) >= time.Second
	inc.savedMu.Unlock()
	if !due {
		return nil
	}
	if _, err := inc.m.dst.ExecContext(ctx, savePositionSQL, inc.m.spec.JobID, p.File, p.Pos); err != nil {
		return err
	}
	inc.saved(p)
	return nil
}

// caughtUpBytes is the most binlog left to apply for a job to count as
// caught up (status 8), with a lag of at most a second.
const caughtUpBytes = 16 << 20

// A group is handed to the applier when it holds this many row changes or
// bytes of SQL, when it is older than groupMaxAge and the applier is free,
// or when the stream pauses for groupIdle. While the target is busy the
// group grows: catching up goes in big groups, a live stream in small ones.
const (
	groupMaxChanges = 20000
	groupMaxBytes   = 8 << 20
	groupMaxAge     = 20 * time.Millisecond
	groupIdle       = 5 * time.Millisecond
)

// replicate runs the incremental phase until complete says to stop and
// everything up to then is applied.
func (m *migration) replicate(ctx context.Context, complete <-chan string) error {
	if _, err := m.dst.ExecContext(ctx, binlogPositionsDDL); err != nil {
		return fmt.Errorf("create the binlog checkpoint table on the target: %w", err)
	}
	// Unlike the bulk copy, applying changes keeps the checks on: the
	// binlog does not carry what ON DELETE/UPDATE CASCADE did, the target
	// must do it, and secondary unique keys must hold.
	applyVars := map[string]string{"foreign_key_checks": "1", "unique_checks": "1"}
	for k, v := range m.targetVars {
		applyVars[k] = v
	}
	// One connection: each group is one transaction, applied in order.
	apply, err := m.e.openPool(ctx, m.spec.Target, "target", 1, applyVars, true)
	if err != nil {
		return err
	}
	defer apply.Close()
	var maxPacket int
	if err := apply.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return fmt.Errorf("read the target's max_allowed_packet: %w", err)
	}
	inc := &incremental{m: m, tables: map[string]*cdcTable{}, apply: apply, group: newGroup(),
		maxStmt: max(min(1<<20, maxPacket/4), 16<<10), since: map[string]binlogPos{}}
	for id, p := range m.state.Since {
		inc.since[id] = binlogPos{p.File, p.Pos}
	}
	var file string
	var pos uint64
	err = m.dst.QueryRowContext(ctx, "SELECT file, pos FROM "+binlogPositionsTable+" WHERE job_id = ?", m.spec.JobID).Scan(&file, &pos)
	switch {
	case err == nil:
		inc.setApplied(binlogPos{file, pos})
	case m.state.Snapshot == nil || m.state.Snapshot.File == "":
		return errors.New("the snapshot has no binlog position: the source user needs REPLICATION CLIENT (BINLOG MONITOR) and the source a binlog")
	default:
		inc.setApplied(binlogPos{m.state.Snapshot.File, m.state.Snapshot.Pos})
	}
	m.e.cfg.Logger.Info("incremental phase from the binlog", "job_id", m.spec.JobID, "file", inc.appliedPos().File, "pos", inc.appliedPos().Pos)
	m.report.StepStarted(stepSinker.ID)

	var stopAt *binlogPos
	immediately := false
	var failingSince time.Time
	var failingAt binlogPos
	var pause time.Duration
	for attempt := 0; ; attempt++ {
		// The saved position wins when it is ahead: a commit whose answer
		// was lost still happened.
		var file string
		var pos uint64
		if err := m.dst.QueryRowContext(ctx, "SELECT file, pos FROM "+binlogPositionsTable+" WHERE job_id = ?", m.spec.JobID).Scan(&file, &pos); err == nil {
			if saved := (binlogPos{file, pos}); inc.appliedPos().less(saved) {
				inc.setApplied(saved)
			}
		}
		inc.replaying = attempt > 0 || m.spec.Resume
		if err := m.binlogStillThere(ctx, inc.appliedPos()); err != nil {
			return err
		}
		err := inc.stream(ctx, complete, &stopAt, &immediately)
		if err == nil || ctx.Err() != nil {
			if err == nil {
				// The last word on the lag: what is left after Complete.
				inc.checkCaughtUp(ctx)
				return nil
			}
			return ctx.Err()
		}
		if isPurged(err) {
			return fmt.Errorf("the source no longer has the binlog at %s:%d (purged?): %w; raise binlog_expire_logs_seconds / expire_logs_days and start the job again", inc.appliedPos().File, inc.appliedPos().Pos, err)
		}
		var applyErr *applyError
		if errors.As(err, &applyErr) && !retryable(err) {
			return err
		}
		// The stream broke, or the target refused a group for a reason a
		// new connection may cure: start again from the last committed
		// position once both servers answer. Failures without progress
		// end the job after the retry window, with a growing pause
		// between attempts.
		if p := inc.appliedPos(); failingSince.IsZero() || p != failingAt {
			failingSince, failingAt, pause = time.Now(), p, 0
		} else if time.Since(failingSince) > m.e.cfg.RetryFor {
			return fmt.Errorf("the incremental phase made no progress for %s, still at %s:%d: %w", m.e.cfg.RetryFor, p.File, p.Pos, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(max(2*pause, time.Second), 15*time.Second)
		retryErr := m.e.retry(ctx, "reconnect to the source and the target", func() error {
			for _, db := range []*sql.DB{m.src, m.dst} {
				if err := db.PingContext(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if retryErr != nil {
			return fmt.Errorf("%w (after: %w)", retryErr, err)
		}
		m.e.cfg.Logger.Warn("binlog stream restarted from the last applied transaction", "job_id", m.spec.JobID, "err", err, "file", inc.appliedPos().File, "pos", inc.appliedPos().Pos)
	}
}

func (inc *incremental) setApplied(p binlogPos) {
	inc.mu.Lock()
	inc.applied = p
	inc.mu.Unlock()
}

// advance moves the position past an event outside any transaction: the
// group's end when changes wait to be applied, else the applied position.
func (inc *incremental) advance(next binlogPos) {
	inc.group.setEnd(next)
	if inc.group.empty() && inc.inflight == nil {
		inc.setApplied(next)
	}
}

// reached is the position the job will have applied once everything read
// is: the end of the last transaction read.
func (inc *incremental) reached() binlogPos {
	if inc.group.hasEnd {
		return inc.group.end
	}
	return inc.appliedPos()
}

func (inc *incremental) appliedPos() binlogPos {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	return inc.applied
}

// applyError is a change the target refused.
type applyError struct{ err error }

func (e *applyError) Error() string { return e.err.Error() }
func (e *applyError) Unwrap() error { return e.err }

// binlogError is a failure of the binlog stream. go-mysql's errors carry
// their stack traces in their text; logs and ErrorInfo get the message
// lines only.
type binlogError struct{ err error }

func (e *binlogError) Error() string {
	var parts []string
	for _, line := range strings.Split(e.err.Error(), "\n") {
		// Frames are "\tfile:line" and "package.function" lines, without
		// a space; messages have one.
		if line == "" || strings.HasPrefix(line, "\t") || !strings.Contains(line, " ") {
			continue
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return e.err.Error()
	}
	return "binlog stream: " + strings.Join(parts, ": ")
}

func (e *binlogError) Unwrap() error { return e.err }

func isPurged(err error) bool {
	var myErr *gmysql.MySQLError
	if errors.As(err, &myErr) && myErr.Number == 1236 {
		return true
	}
	return strings.Contains(err.Error(), "ERROR 1236")
}

// stream reads the binlog from inc.applied and applies it until complete
// is satisfied (nil) or the stream fails.
func (inc *incremental) stream(ctx context.Context, complete <-chan string, stopAt **binlogPos, immediately *bool) error {
	m := inc.m
	src := m.spec.Source
	cfg := replication.BinlogSyncerConfig{
		ServerID:                serverIDFor(m.spec.JobID),
		Flavor:                  "mariadb",
		Host:                    src.Host,
		Port:                    uint16(src.Port),
		User:                    src.User,
		Password:                src.Password,
		TimestampStringLocation: time.UTC,
		HeartbeatPeriod:         time.Second,
		ReadTimeout:             10 * time.Second,
		MaxReconnectAttempts:    1,
		DisableRetrySync:        true,
		// go-mysql logs its whole config, password included, at Info:
		// it only gets to say warnings and errors.
		Logger: slog.New(minLevel{m.e.cfg.Logger.Handler(), slog.LevelWarn}).With("part", "binlog"),
	}
	if !inc.m.sourceIsMariaDB(ctx) {
		cfg.Flavor = "mysql"
	}
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	streamer, err := syncer.StartSync(toGoMySQLPos(inc.appliedPos()))
	if err != nil {
		return &binlogError{err}
	}
	inc.applyCtx = ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		inc.watchLag(ctx)
	}()
	defer func() { cancel(); <-lagDone }()

	file := inc.appliedPos().File
	var pending []rowChange
	var pendingRows int64
	inTxn := false
	// Whatever an earlier stream left in the group was never applied; the
	// group in flight, if any, ends before the stream returns.
	inc.group = newGroup()
	inc.groupSince.Store(0)
	inc.inflightSince.Store(0)
	defer func() {
		if err := inc.wait(); err != nil {
			m.e.cfg.Logger.Warn("applying the last group failed", "job_id", m.spec.JobID, "err", err)
		}
	}()
	for {
		if *stopAt != nil && !inTxn {
			if !inc.reached().less(**stopAt) || *immediately {
				return inc.drain(ctx)
			}
		}
		select {
		case mode := <-complete:
			inc.completeMode = mode
		default:
		}
		if inc.completeMode != "" && *stopAt == nil {
			// Kept on inc: a failure here restarts the stream, and the
			// request must outlive it.
			p, err := inc.m.masterPos(ctx)
			if err != nil {
				return err
			}
			*stopAt = &p
			*immediately = inc.completeMode == engine.CompleteImmediately
			m.e.cfg.Logger.Info("completing: applying up to the source's position at the call", "job_id", m.spec.JobID, "file", p.File, "pos", p.Pos, "mode", inc.completeMode)
			continue
		}
		var ev *replication.BinlogEvent
		var err error
		if inc.unapplied() && !inTxn {
			// A pause in the stream flushes the group.
			gctx, gcancel := context.WithTimeout(ctx, groupIdle)
			ev, err = streamer.GetEvent(gctx)
			gcancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				if err := inc.flush(ctx); err != nil {
					return err
				}
				if err := inc.keepSaved(ctx); err != nil {
					return err
				}
				continue
			}
		} else {
			ev, err = streamer.GetEvent(ctx)
		}
		if err != nil {
			return &binlogError{err}
		}
		if ev.Header.Timestamp != 0 && ev.Header.EventType != replication.HEARTBEAT_EVENT {
			inc.lastEvent.Store(int64(ev.Header.Timestamp))
		}
		next := binlogPos{file, uint64(ev.Header.LogPos)}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
			if !inTxn {
				inc.advance(binlogPos{file, e.Position})
			}
			continue
		case *replication.MariadbGTIDEvent:
			// MariaDB's GTID opens a transaction unless the statement
			// after it stands alone (DDL).
			inTxn, pending, pendingRows = !e.IsStandalone(), pending[:0], 0
			continue
		case *replication.GTIDEvent:
			// MySQL opens its transactions with a BEGIN after the GTID;
			// a DDL comes alone.
			pending, pendingRows = pending[:0], 0
			continue
		case *replication.TransactionPayloadEvent:
			return &applyError{fmt.Errorf("the source wrote a compressed transaction at %s:%d (binlog_transaction_compression=ON, perhaps for one session); opendts does not read those: turn it off on the source and start the job again", next.File, next.Pos)}
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			upper := strings.ToUpper(q)
			switch upper {
			case "BEGIN":
				inTxn, pending, pendingRows = true, pending[:0], 0
				continue
			case "COMMIT":
				if err := inc.commit(ctx, pending, pendingRows, next); err != nil {
					return err
				}
				inTxn, pending, pendingRows = false, nil, 0
				continue
			case "ROLLBACK":
				// A transaction the source rolled back (logged because it
				// touched a non-transactional table, whose changes the
				// row format logs apart, in their own transaction).
				if err := inc.commit(ctx, nil, 0, next); err != nil {
					return err
				}
				inTxn, pending, pendingRows = false, nil, 0
				continue
			}
			if strings.HasPrefix(upper, "XA ") {
				return &applyError{fmt.Errorf("the source wrote an XA transaction at %s:%d; opendts does not replicate XA transactions", next.File, next.Pos)}
			}
			if inTxn && (strings.HasPrefix(upper, "SAVEPOINT") || strings.HasPrefix(upper, "RELEASE SAVEPOINT") || strings.HasPrefix(upper, "ROLLBACK TO")) {
				// The binlog keeps only what the transaction committed:
				// savepoints inside it change nothing to apply.
				continue
			}
			// CREATE TABLE ... SELECT can be one transaction: the DDL, then
			// the rows, then the commit (MySQL 8.0.21+ marks it with a
			// trailing START TRANSACTION). The position stays before it
			// until the commit; a replay finds the table there.
			opens := false
			const startTxn = "START TRANSACTION"
			if t := strings.TrimRight(q, "; \t\r\n"); createTableDDL.MatchString(q) && len(t) > len(startTxn) && strings.EqualFold(t[len(t)-len(startTxn):], startTxn) {
				q, opens = strings.TrimRight(t[:len(t)-len(startTxn)], "; \t\r\n"), true
			}
			// DDL commits implicitly: the changes before it go first.
			if err := inc.drain(ctx); err != nil {
				return err
			}
			within := inTxn || opens
			if err := inc.ddl(ctx, string(e.Schema), q, next, within); err != nil {
				return err
			}
			if !within {
				pending = pending[:0]
			}
			inTxn = within
		case *replication.RowsEvent:
			before := len(pending)
			if pending, err = inc.rowChanges(ctx, e, next, pending); err != nil {
				return err
			}
			if len(pending) > before {
				pendingRows += int64(len(e.Rows))
			}
		case *replication.XIDEvent:
			if err := inc.commit(ctx, pending, pendingRows, next); err != nil {
				return err
			}
			inTxn, pending, pendingRows = false, nil, 0
		default:
			// Events between transactions (checkpoints, GTID lists) move
			// the position too, or Complete would wait for them forever.
			if ev.Header.EventType != replication.HEARTBEAT_EVENT && !inTxn && ev.Header.LogPos > 0 {
				inc.advance(next)
			}
			if ev.Header.EventType == replication.HEARTBEAT_EVENT && !inTxn {
				if err := inc.keepSaved(ctx); err != nil {
					return err
				}
			}
		}
	}
}

func toGoMySQLPos(p binlogPos) gomysqlmysql.Position {
	return gomysqlmysql.Position{Name: p.File, Pos: uint32(p.Pos)}
}

// serverIDFor gives each job its own replica server_id, away from the small
// numbers DBAs give their servers.
func serverIDFor(jobID string) uint32 {
	return 1_000_000_000 + crc32.ChecksumIEEE([]byte(jobID))%1_000_000_000
}

// rowsNoForeignKeyChecks is the rows event flag that says the source
// session had foreign_key_checks=0.
const rowsNoForeignKeyChecks = 0x0002

// rowChanges appends the changes of a rows event on a selected table.
func (inc *incremental) rowChanges(ctx context.Context, e *replication.RowsEvent, at binlogPos, out []rowChange) ([]rowChange, error) {
	db, name := string(e.Table.Schema), string(e.Table.Table)
	if !inc.m.selected(db, name) {
		return out, nil
	}
	if since, ok := inc.since[tableID(db, name)]; ok && !since.less(at) {
		return out, nil
	}
	t, err := inc.table(ctx, db, name)
	if err != nil {
		return nil, err
	}
	noFK := e.Flags&rowsNoForeignKeyChecks != 0
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, r := range e.Rows {
			v, err := t.rowValues(r)
			if err != nil {
				return nil, err
			}
			out = append(out, rowChange{t: t, op: opInsert, after: v, noFKChecks: noFK})
		}
	case replication.EnumRowsEventTypeUpdate:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			before, err := t.rowValues(e.Rows[i])
			if err != nil {
				return nil, err
			}
			after, err := t.rowValues(e.Rows[i+1])
			if err != nil {
				return nil, err
			}
			out = append(out, rowChange{t: t, op: opUpdate, before: before, after: after, noFKChecks: noFK})
		}
	case replication.EnumRowsEventTypeDelete:
		for _, r := range e.Rows {
			v, err := t.rowValues(r)
			if err != nil {
				return nil, err
			}
			out = append(out, rowChange{t: t, op: opDelete, before: v, noFKChecks: noFK})
		}
	}
	return out, nil
}

func (inc *incremental) table(ctx context.Context, db, name string) (*cdcTable, error) {
	key := tableID(db, name)
	if t, ok := inc.tables[key]; ok {
		return t, nil
	}
	t, err := loadCDCTable(ctx, inc.m.dst, db, name)
	if err != nil {
		return nil, &applyError{err}
	}
	inc.tables[key] = t
	return t, nil
}

// commit adds one source transaction to the group and hands the group to
// the applier when it is big or old enough. A transaction that touched
// nothing selected only moves the position.
func (inc *incremental) commit(ctx context.Context, changes []rowChange, rows int64, next binlogPos) error {
	if len(changes) > 0 && inc.group.empty() {
		inc.group.since = inc.lastEvent.Load()
		inc.groupSince.Store(inc.group.since)
	}
	inc.group.add(changes, rows)
	inc.advance(next)
	if err := inc.keepSaved(ctx); err != nil {
		return err
	}
	g := inc.group
	if g.changes >= groupMaxChanges || g.bytes >= groupMaxBytes {
		return inc.flush(ctx)
	}
	if !g.empty() && time.Since(g.started) >= groupMaxAge {
		busy, err := inc.busy()
		if err != nil {
			return err
		}
		if !busy {
			return inc.flush(ctx)
		}
	}
	return nil
}

// flush hands the group to the applier, after the group before it is
// applied: one group in flight at a time, so positions commit in order.
func (inc *incremental) flush(ctx context.Context) error {
	if err := inc.wait(); err != nil {
		return err
	}
	g := inc.group
	inc.group = newGroup()
	if g.hasEnd {
		inc.group.setEnd(g.end)
	}
	if g.empty() {
		if g.hasEnd {
			inc.setApplied(g.end)
		}
		return nil
	}
	inc.inflightSince.Store(g.since)
	inc.groupSince.Store(0)
	done := make(chan error, 1)
	inc.inflight = done
	go func() { done <- inc.applyGroup(inc.applyCtx, g) }()
	return nil
}

// unapplied reports whether something read is not applied yet.
func (inc *incremental) unapplied() bool {
	return !inc.group.empty() || inc.inflight != nil || (inc.group.hasEnd && inc.group.end != inc.appliedPos())
}

// drain applies everything read so far and waits for it.
func (inc *incremental) drain(ctx context.Context) error {
	if err := inc.flush(ctx); err != nil {
		return err
	}
	return inc.wait()
}

// wait waits for the group in flight.
func (inc *incremental) wait() error {
	if inc.inflight == nil {
		return nil
	}
	err := <-inc.inflight
	inc.inflight = nil
	return err
}

// busy reports whether a group is still being applied, and the error of
// one that failed.
func (inc *incremental) busy() (bool, error) {
	if inc.inflight == nil {
		return false, nil
	}
	select {
	case err := <-inc.inflight:
		inc.inflight = nil
		return false, err
	default:
		return true, nil
	}
}

var tableDDL = regexp.MustCompile("(?is)^\\s*(?:CREATE(?:\\s+OR\\s+REPLACE)?|ALTER|DROP|RENAME|TRUNCATE)\\s+(?:TEMPORARY\\s+)?(?:ONLINE\\s+|IGNORE\\s+)?TABLE\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?((?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+))?)")
var truncateDDL = regexp.MustCompile("(?is)^\\s*TRUNCATE\\s+((?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+))?)")
var indexDDL = regexp.MustCompile("(?is)^\\s*(?:CREATE(?:\\s+OR\\s+REPLACE)?\\s+(?:UNIQUE\\s+|FULLTEXT\\s+|SPATIAL\\s+)?INDEX|DROP\\s+INDEX)\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)\\s+ON\\s+((?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+))?)")

// (?s): a comment in front of a statement may span lines.
var leadingComment = regexp.MustCompile(`(?s)^\s*/\*.*?\*/`)

// ddlTarget names the table a table or index statement is about, after
// any leading comments, or reports that it is about none.
func ddlTarget(q string) (string, bool) {
	q = stripLeadingComments(q)
	for _, re := range []*regexp.Regexp{tableDDL, truncateDDL, indexDDL} {
		if m := re.FindStringSubmatch(q); m != nil {
			return m[1], true
		}
	}
	return "", false
}

var createTableDDL = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\b`)

var databaseDDL = regexp.MustCompile("(?is)^\\s*(?:CREATE|DROP)\\s+(?:DATABASE|SCHEMA)\\b")

func unquote(ident string) string {
	ident = strings.TrimSpace(ident)
	if strings.HasPrefix(ident, "`") && strings.HasSuffix(ident, "`") {
		return strings.ReplaceAll(ident[1:len(ident)-1], "``", "`")
	}
	return ident
}

// splitQualified reads the name ddlTarget found into database and table.
// It reads it as a sequence of identifiers, not by searching for "`.":
// quoted names hold dots and doubled back-quotes, and the dot may have
// spaces around it ("`d` . `t`").
func splitQualified(name, defaultDB string) (string, string) {
	n, rest, ok := parseTableName(name, defaultDB)
	if !ok || strings.TrimSpace(rest) != "" {
		return defaultDB, unquote(name)
	}
	return n.db, n.name
}

// ddl applies a statement on selected tables (CREATE, ALTER, DROP, RENAME,
// TRUNCATE TABLE) or, in whole-instance jobs, databases, in binlog order;
// others are left out and logged. A statement the target refuses fails
// the job rather than let the schemas drift apart.
func (inc *incremental) ddl(ctx context.Context, schema, q string, next binlogPos, inTxn bool) error {
	m := inc.m
	apply := false
	// A table copied from a later snapshot than this statement holds the
	// rows after it: a TRUNCATE or DROP TABLE from before would destroy
	// them (its CREATE again finds the table there). Other DDL is applied:
	// the table on the target was created before the first snapshot.
	selected := m.selected
	if bare := stripLeadingComments(q); truncateDDL.MatchString(bare) || dropTablesDDL.MatchString(bare) {
		selected = func(db, name string) bool {
			if since, ok := inc.since[tableID(db, name)]; ok && !since.less(next) {
				return false
			}
			return m.selected(db, name)
		}
	}
	// A DDL can change what the cached shapes say of other tables too (a
	// new foreign key makes its parent table take the serial path).
	inc.tables = map[string]*cdcTable{}
	stmt, multi, err := multiTableDDL(q, schema, selected)
	switch {
	case multi:
		if err != nil {
			return &applyError{fmt.Errorf("DDL at %s:%d: %w", next.File, next.Pos, err)}
		}
		if apply = stmt != ""; apply && stmt != q {
			m.e.cfg.Logger.Info("DDL cut down to the selected tables", "job_id", m.spec.JobID, "statement", stmt)
		}
		q = stmt
	case databaseDDL.MatchString(q):
		apply = m.spec.MigrateObject == engine.MigrateObjectWholeInstance
	default:
		if target, ok := ddlTarget(q); ok {
			db, name := splitQualified(target, schema)
			apply = selected(db, name)
		}
	}
	if apply {
		conn, err := m.dst.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if schema != "" {
			// The session's database may be one the job does not copy
			// (1049) when the statement names its table in full.
			if _, err := conn.ExecContext(ctx, "USE "+quoteIdent(schema)); err != nil && !isExists(err) && !isUnknownDatabase(err) {
				return &applyError{fmt.Errorf("apply DDL at %s:%d: %w", next.File, next.Pos, err)}
			}
		}
		if _, err := conn.ExecContext(ctx, q); err != nil && !isExists(err) && !(inc.replaying && ddlAlreadyDone(err)) {
			return &applyError{fmt.Errorf("the target refused DDL at %s:%d (%.200s): %w", next.File, next.Pos, q, err)}
		}
		m.e.cfg.Logger.Info("DDL applied", "job_id", m.spec.JobID, "file", next.File, "pos", next.Pos)
		inc.replaying = false
		if inTxn {
			return nil
		}
		if _, err := m.dst.ExecContext(ctx, savePositionSQL, m.spec.JobID, next.File, next.Pos); err != nil {
			return err
		}
		inc.saved(next)
	}
	if !inTxn {
		inc.advance(next)
	}
	return nil
}

func isUnknownDatabase(err error) bool {
	var myErr *gmysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == 1049
}

// ddlAlreadyDone recognises a DDL replayed after a crash that came between
// applying it and saving the position after it.
func ddlAlreadyDone(err error) bool {
	var myErr *gmysql.MySQLError
	if !errors.As(err, &myErr) {
		return false
	}
	switch myErr.Number {
	case 1060, 1061, 1091, 1051, 1146: // duplicate column/key, can't drop, unknown table
		return true
	}
	return false
}

// binlogStillThere fails, with advice, when the source has purged the
// binlog file the job must read next: going on would skip changes.
func (m *migration) binlogStillThere(ctx context.Context, p binlogPos) error {
	files, err := binaryLogs(ctx, m.src)
	if err != nil || len(files) == 0 {
		return nil // the stream will report the connection problem
	}
	for _, f := range files {
		if f.name == p.File {
			return nil
		}
	}
	return fmt.Errorf("the source no longer has the binlog file %s this job must read next (its oldest is %s): it was purged, and the changes in it are lost to this job. Raise binlog_expire_logs_seconds / expire_logs_days on the source so binlogs outlive a stop of opendts, then start the job again from scratch (ModifyMigrateJob, CreateMigrateCheckJob, StartMigrateJob)", p.File, files[0].name)
}

// binlogFile is a line of SHOW BINARY LOGS.
type binlogFile struct {
	name string
	size int64
}

// binaryLogs lists the source's binlog files, oldest first.
func binaryLogs(ctx context.Context, q queryer) ([]binlogFile, error) {
	rows, err := q.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []binlogFile
	for rows.Next() {
		var f binlogFile
		vals := []any{&f.name, &f.size}
		for i := 2; i < len(cols); i++ {
			vals = append(vals, new(any))
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// showMasterStatus reads the server's current binlog file and position;
// ok is false when it has no binlog.
func showMasterStatus(ctx context.Context, q queryer) (p binlogPos, ok bool, err error) {
	rows, err := q.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		// MySQL 8.4 renamed it.
		var err2 error
		if rows, err2 = q.QueryContext(ctx, "SHOW BINARY LOG STATUS"); err2 != nil {
			return p, false, fmt.Errorf("read the source's binlog position: %w", err)
		}
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return p, false, rows.Err()
	}
	vals := []any{&p.File, &p.Pos}
	for i := 2; i < len(cols); i++ {
		vals = append(vals, new(any))
	}
	if err := rows.Scan(vals...); err != nil {
		return p, false, err
	}
	return p, true, nil
}

// masterPos is the source's current binlog position.
func (m *migration) masterPos(ctx context.Context) (binlogPos, error) {
	p, ok, err := showMasterStatus(ctx, m.src)
	if err == nil && !ok {
		err = errors.New("the source has no binlog (SHOW MASTER STATUS is empty)")
	}
	return p, err
}

// watchLag reports the lag every second. It never saves the position: only
// the stream does, at group boundaries.
func (inc *incremental) watchLag(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			inc.checkCaughtUp(ctx)
		}
	}
}

func (inc *incremental) checkCaughtUp(ctx context.Context) {
	m := inc.m
	master, err := m.masterPos(ctx)
	if err != nil {
		m.e.cfg.Logger.Warn("cannot read the source's binlog position for the lag", "job_id", m.spec.JobID, "err", err)
		return
	}
	applied := inc.appliedPos()
	var bytes int64
	if master.File == applied.File {
		bytes = int64(master.Pos) - int64(applied.Pos)
	} else {
		bytes = m.binlogBytesBetween(ctx, applied, master)
	}
	bytes = max(bytes, 0)
	var seconds int64
	// known: the lag's age is known (nothing left, or an event read).
	known := bytes == 0
	if bytes > 0 {
		oldest := inc.inflightSince.Load()
		if oldest == 0 {
			oldest = inc.groupSince.Load()
		}
		if oldest == 0 {
			// All read is applied: what is behind is not read yet.
			oldest = inc.lastEvent.Load()
		}
		if oldest > 0 {
			seconds = max(time.Now().Unix()-oldest, 0)
			known = true
		}
	}
	m.report.Lag(seconds, bytes)
	// Caught up: within a second of the source. A busy source writes
	// megabytes a second, so bytes only guard against a backlog whose age
	// the events read so far do not show yet.
	if !inc.caughtUp && known && seconds <= 1 && bytes < caughtUpBytes {
		inc.caughtUp = true
		m.report.CaughtUp()
	}
}

// binlogBytesBetween sums the binlog between two positions in different
// files.
func (m *migration) binlogBytesBetween(ctx context.Context, from, to binlogPos) int64 {
	files, err := binaryLogs(ctx, m.src)
	if err != nil {
		return 0
	}
	var total int64
	for _, f := range files {
		switch {
		case f.name < from.File || f.name > to.File:
		case f.name == from.File:
			total += f.size - int64(from.Pos)
		case f.name == to.File:
			total += int64(to.Pos)
		default:
			total += f.size
		}
	}
	return total
}
