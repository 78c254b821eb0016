package mysql

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"time"

	gomysqlmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gmysql "github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// The reading side of the binlog path: a go-mysql syncer from the last
// committed position, framed into source transactions (BEGIN/GTID ...
// XID or COMMIT), rows events of selected tables decoded into changes,
// DDL handed over in order. What it frames goes to the applying side
// (cdc_flow.go) through commit, spill and ddl.

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
func (inc *incremental) stream(ctx context.Context, ctl *engine.StreamControl) error {
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
		// go-mysql reads ahead into a channel of this many decoded
		// events (10,240 by default): while the target is the slower
		// side, as in a large transaction, that buffer is what memory
		// holds, hundreds of MiB of row events. A thousand events still
		// keeps the reader ahead of the applier.
		EventCacheCount:      eventReadAhead,
		MaxReconnectAttempts: 1,
		DisableRetrySync:     true,
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
	file := inc.appliedPos().File
	var pending []rowChange
	var pendingRows int64
	var pendingBytes int
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
		// A large source transaction cut short: its pieces on the target
		// are undone, and the restart reads it again from its start.
		inc.abandonOpen()
	}()
	for {
		if !inTxn && ctl.ShouldStop(inc.reached()) {
			return inc.drain(ctx)
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
		next := position{File: file, Pos: uint64(ev.Header.LogPos)}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
			if !inTxn {
				inc.advance(position{File: file, Pos: e.Position})
			}
			continue
		case *replication.MariadbGTIDEvent:
			// MariaDB's GTID opens a transaction unless the statement
			// after it stands alone (DDL).
			inTxn, pending, pendingRows, pendingBytes = !e.IsStandalone(), pending[:0], 0, 0
			continue
		case *replication.GTIDEvent:
			// MySQL opens its transactions with a BEGIN after the GTID;
			// a DDL comes alone.
			pending, pendingRows, pendingBytes = pending[:0], 0, 0
			continue
		case *replication.TransactionPayloadEvent:
			return &applyError{fmt.Errorf("the source wrote a compressed transaction at %s:%d (binlog_transaction_compression=ON, perhaps for one session); opendts does not read those: turn it off on the source and start the job again", next.File, next.Pos)}
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			upper := strings.ToUpper(q)
			switch upper {
			case "BEGIN":
				inTxn, pending, pendingRows, pendingBytes = true, pending[:0], 0, 0
				continue
			case "COMMIT":
				if err := inc.commit(ctx, pending, pendingRows, next); err != nil {
					return err
				}
				inTxn, pending, pendingRows, pendingBytes = false, nil, 0, 0
				continue
			case "ROLLBACK":
				// A transaction the source rolled back (logged because it
				// touched a non-transactional table, whose changes the
				// row format logs apart, in their own transaction). The
				// pieces of it already sent are undone on the target.
				if err := inc.discardOpen(); err != nil {
					return err
				}
				if err := inc.commit(ctx, nil, 0, next); err != nil {
					return err
				}
				inTxn, pending, pendingRows, pendingBytes = false, nil, 0, 0
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
			if inc.openTxn {
				return &applyError{fmt.Errorf("the source wrote DDL inside a transaction larger than opendts holds in memory, at %s:%d; opendts does not replicate that", next.File, next.Pos)}
			}
			if err := inc.drain(ctx); err != nil {
				return err
			}
			within := inTxn || opens
			if err := inc.ddl(ctx, string(e.Schema), q, next, within); err != nil {
				return err
			}
			if !within {
				pending, pendingBytes = pending[:0], 0
			}
			inTxn = within
		case *replication.RowsEvent:
			before := len(pending)
			if pending, err = inc.rowChanges(ctx, e, next, pending); err != nil {
				return err
			}
			if len(pending) > before {
				pendingRows += int64(len(e.Rows))
				for _, c := range pending[before:] {
					pendingBytes += c.size()
				}
			}
			// A source transaction too big to hold goes to the target in
			// pieces, inside one target transaction that its commit ends.
			if inTxn && (len(pending) >= groupMaxChanges || pendingBytes >= groupMaxBytes) {
				if err := inc.spill(ctx, pending, pendingRows); err != nil {
					return err
				}
				pending, pendingRows, pendingBytes = pending[:0], 0, 0
			}
		case *replication.XIDEvent:
			if err := inc.commit(ctx, pending, pendingRows, next); err != nil {
				return err
			}
			inTxn, pending, pendingRows, pendingBytes = false, nil, 0, 0
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

func toGoMySQLPos(p position) gomysqlmysql.Position {
	return gomysqlmysql.Position{Name: p.File, Pos: uint32(p.Pos)}
}

// eventReadAhead bounds the binlog events decoded ahead of the applier.
const eventReadAhead = 1024

// serverIDFor gives each job its own replica server_id, away from the small
// numbers DBAs give their servers.
func serverIDFor(jobID string) uint32 {
	return 1_000_000_000 + crc32.ChecksumIEEE([]byte(jobID))%1_000_000_000
}

// rowsNoForeignKeyChecks is the rows event flag that says the source
// session had foreign_key_checks=0.
const rowsNoForeignKeyChecks = 0x0002

// rowChanges appends the changes of a rows event on a selected table.
func (inc *incremental) rowChanges(ctx context.Context, e *replication.RowsEvent, at position, out []rowChange) ([]rowChange, error) {
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
