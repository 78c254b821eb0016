package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/opendts/opendts/internal/engine"
)

// The change stream reads the job's slot with pgoutput and applies each
// source transaction, in commit order, inside a target transaction that
// also writes the position reached (_opendts.migrate_stream); several
// source transactions share one target transaction while they come
// quickly. The slot is told a position is flushed only after the target
// committed it, so after any crash the slot still holds what the target
// lacks, and the mark says what to skip: every change once.

const (
	// groupChanges and groupAge end a group of source transactions;
	// groupIdle ends it sooner when nothing more arrives: a quiet source
	// gets its changes applied at once, a busy one in groups.
	groupChanges = 5000
	groupAge     = 100 * time.Millisecond
	groupIdle    = 3 * time.Millisecond
	// statusEvery is how often the slot hears the position applied, well
	// within wal_sender_timeout (60 s by default).
	statusEvery = time.Second
)

const streamMarks = `CREATE SCHEMA IF NOT EXISTS ` + markSchema + `;
	CREATE TABLE IF NOT EXISTS ` + markSchema + `.migrate_stream (
		job_id text PRIMARY KEY, lsn pg_lsn NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`

// stream is the incremental phase of a one-database job.
type stream struct {
	m  *migration
	db string
	// dbInfo is the database's selection, for the DDL replayed.
	dbInfo *database
	slot   string
	// since is each table's later-snapshot boundary (see jobState.Since).
	since map[string]pglogrepl.LSN
	// keyless tables were copied by ctid: before their boundary their
	// changes are in the rows already.
	keyless map[string]bool

	mu sync.Mutex
	// applied: every change before it is committed on the target, or
	// concerns nothing selected.
	applied pglogrepl.LSN
	// pendingSince is the commit time of the oldest transaction read and
	// not yet committed on the target (zero: none).
	pendingSince time.Time
	// heard is when the source last said where its WAL ends.
	heard time.Time

	rels map[uint32]*relInfo
}

var _ engine.ChangeStream = (*stream)(nil)

// OpenStream prepares the change stream from the job's slot.
func (m *migration) OpenStream(ctx context.Context) (engine.ChangeStream, error) {
	if len(m.dbs) != 1 {
		return nil, engine.Permanent(errors.New("a full + incremental PostgreSQL job replicates one database"))
	}
	d := m.dbs[0]
	if d.Relations == nil {
		if err := m.readInventory(ctx, d); err != nil {
			return nil, err
		}
	}
	s := &stream{m: m, db: d.Name, dbInfo: d, slot: slotName(m.spec.JobID), since: map[string]pglogrepl.LSN{}, keyless: map[string]bool{}}
	for t, lsn := range m.state.Since {
		s.since[t] = pglogrepl.LSN(lsn)
	}
	for _, r := range d.Relations {
		if len(r.Key) == 0 || !r.IntKey {
			// Split by ctid: copied again whole after a resume.
			s.keyless[r.Ref.Schema+"."+r.Ref.Table] = true
		}
	}
	s.applied = pglogrepl.LSN(m.state.SlotLSN)
	return s, nil
}

func (s *stream) Close() {}

// Applied is the position committed on the target.
func (s *stream) Applied() engine.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lsnPosition(s.applied)
}

func (s *stream) setApplied(l pglogrepl.LSN) {
	s.mu.Lock()
	if l > s.applied {
		s.applied = l
	}
	s.mu.Unlock()
}

// SourcePosition is a position after every transaction the source has
// acknowledged so far. The WAL insert position is that, but with
// synchronous_commit off a commit is acknowledged before its WAL is
// flushed, and the slot sends only flushed WAL: a transaction of opendts's
// own that commits synchronously (assigning an xid makes it write a commit
// record) flushes everything before it, so the slot reaches the position.
func (s *stream) SourcePosition(ctx context.Context) (engine.Position, error) {
	c, err := s.m.e.connect(ctx, s.m.spec.Source, "source", s.db)
	if err != nil {
		return nil, err
	}
	defer closeQuietly(c)
	var text string
	tx, err := c.Begin(ctx)
	if err == nil {
		// The xid is selected, so that it is assigned (an unused column of
		// a subquery is never evaluated): only then does the commit write
		// a record and flush.
		var xid string
		err = tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text, pg_current_wal_insert_lsn()::text").Scan(&xid, &text)
		if err == nil {
			err = tx.Commit(ctx)
		}
		tx.Rollback(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: read the WAL position: %w", s.db, err)
	}
	lsn, err := pglogrepl.ParseLSN(text)
	return lsnPosition(lsn), err
}

// Lag is the WAL not yet applied, and the age of the oldest transaction
// read and not applied. With none pending, the lag is known to be nothing
// once the source has lately said where its WAL ends.
func (s *stream) Lag(ctx context.Context) (engine.Lag, error) {
	cur, err := s.sourceLSN(ctx)
	if err != nil {
		return engine.Lag{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var l engine.Lag
	if cur > s.applied {
		l.Bytes = int64(cur - s.applied)
	}
	switch {
	case !s.pendingSince.IsZero():
		l.Seconds, l.Known = int64(time.Since(s.pendingSince).Seconds()), true
	case l.Bytes == 0 || time.Since(s.heard) < 3*statusEvery:
		l.Known = true
	}
	return l, nil
}

// Reconnect waits until both servers answer.
func (s *stream) Reconnect(ctx context.Context) error {
	return s.m.Retry().Do(ctx, "reconnect", transient, func() error {
		for _, side := range []struct {
			name string
			ep   engine.Endpoint
		}{{"source", s.m.spec.Source}, {"target", s.m.spec.Target}} {
			c, err := s.m.e.connect(ctx, side.ep, side.name, s.db)
			if err != nil {
				return err
			}
			closeQuietly(c)
		}
		return nil
	})
}

// Run applies the slot's changes until ctl says stop.
func (s *stream) Run(ctx context.Context, ctl *engine.StreamControl) error {
	dst, err := s.m.connectTarget(ctx, s.db)
	if err != nil {
		return err
	}
	defer closeQuietly(dst)
	// Triggers and foreign keys act as in PostgreSQL's own logical
	// replication: not for replicated changes.
	if _, err := dst.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		return fmt.Errorf("target %s: set session_replication_role (needs a superuser): %w", s.db, err)
	}
	if _, err := dst.Exec(ctx, streamMarks); err != nil {
		return fmt.Errorf("target %s: create %s.migrate_stream: %w", s.db, markSchema, err)
	}
	// The epoch is recorded in this database before its mark is read.
	if err := s.m.fence.claim(ctx, dst); err != nil {
		return err
	}
	var markText *string
	err = dst.QueryRow(ctx, `SELECT lsn::text FROM `+markSchema+`.migrate_stream WHERE job_id = $1`, s.m.spec.JobID).Scan(&markText)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("target %s: read the stream's mark: %w", s.db, err)
	}
	mark := pglogrepl.LSN(s.m.state.SlotLSN)
	if markText != nil {
		if mark, err = pglogrepl.ParseLSN(*markText); err != nil {
			return err
		}
	}
	s.setApplied(mark)
	rc, err := s.m.e.replConn(ctx, s.m.spec.Source, s.db)
	if err != nil {
		return err
	}
	defer rc.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, rc, s.slot, mark, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(s.slot)}})
	if err != nil {
		return fmt.Errorf("source %s: start replication from slot %s at %s: %w", s.db, s.slot, mark, err)
	}
	a := &applier{s: s, dst: dst, rc: rc, skipBefore: mark, rels: map[uint32]*relInfo{}}
	if err := dst.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&a.searchPath); err != nil {
		return fmt.Errorf("target %s: %w", s.db, err)
	}
	return a.run(ctx, ctl)
}

// applier is one Run's reading and applying.
type applier struct {
	s   *stream
	dst *pgx.Conn
	rc  *pgconn.PgConn
	// skipBefore: transactions committed before it are on the target.
	skipBefore pglogrepl.LSN
	rels       map[uint32]*relInfo
	// searchPath is the session's own, restored after a replayed DDL.
	searchPath string

	inTxn  bool
	skip   bool
	txnLSN pglogrepl.LSN
	// group is the open target transaction.
	groupOpen    bool
	groupStarted time.Time
	groupChanges int
	groupEnd     pglogrepl.LSN
	nextStatus   time.Time
	// lastCommit is when the last source commit arrived; idle says the
	// last wait for a message timed out.
	lastCommit time.Time
	idle       bool
	// ddlInTxn says the source transaction being read replayed a DDL.
	ddlInTxn bool
	// batch holds statements not yet sent to the target (apply.go).
	batch batch
}

func (a *applier) run(ctx context.Context, ctl *engine.StreamControl) error {
	defer func() {
		if a.groupOpen {
			a.dst.Exec(context.Background(), "ROLLBACK")
		}
	}()
	a.nextStatus = time.Now()
	for {
		if !time.Now().Before(a.nextStatus) {
			if err := a.sendStatus(ctx); err != nil {
				return err
			}
		}
		deadline := a.nextStatus
		if a.groupOpen && !a.inTxn {
			if time.Since(a.groupStarted) >= groupAge || a.groupChanges >= groupChanges || a.idle {
				if err := a.commitGroup(ctx); err != nil {
					return err
				}
				if ctl.ShouldStop(a.s.Applied()) {
					return nil
				}
				continue
			}
			deadline = a.groupStarted.Add(groupAge)
			if soon := a.lastCommit.Add(groupIdle); soon.Before(deadline) {
				deadline = soon
			}
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := a.rc.ReceiveMessage(rctx)
		cancel()
		a.idle = false
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				// Nothing more came: an open group is committed now, and
				// a Complete already reached needs no more WAL.
				a.idle = true
				if !a.inTxn && !a.groupOpen && ctl.ShouldStop(a.s.Applied()) {
					return a.sendStatus(ctx)
				}
				continue
			}
			return fmt.Errorf("source %s: replication: %w", a.s.db, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("source %s: replication: %s (SQLSTATE %s)", a.s.db, msg.Message, msg.Code)
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return err
				}
				if !a.inTxn && !a.groupOpen {
					// Idle: everything the server sent up to its WAL end
					// is applied or concerns nothing selected.
					a.s.setApplied(k.ServerWALEnd)
					a.s.mu.Lock()
					a.s.heard = time.Now()
					a.s.mu.Unlock()
					if ctl.ShouldStop(a.s.Applied()) {
						return a.sendStatus(ctx)
					}
				}
				if k.ReplyRequested {
					a.nextStatus = time.Now()
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return err
				}
				m, err := pglogrepl.Parse(x.WALData)
				if err != nil {
					return fmt.Errorf("source %s: decode pgoutput: %w", a.s.db, err)
				}
				if err := a.handle(ctx, m); err != nil {
					return err
				}
			}
		}
	}
}

// sendStatus tells the slot what the target has committed.
func (a *applier) sendStatus(ctx context.Context) error {
	applied := pglogrepl.LSN(a.s.Applied().(lsnPosition))
	err := pglogrepl.SendStandbyStatusUpdate(ctx, a.rc, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: applied, WALFlushPosition: applied, WALApplyPosition: applied})
	if err != nil {
		return fmt.Errorf("source %s: send the applied position: %w", a.s.db, err)
	}
	a.nextStatus = time.Now().Add(statusEvery)
	return nil
}

func (a *applier) handle(ctx context.Context, m pglogrepl.Message) error {
	switch m := m.(type) {
	case *pglogrepl.RelationMessage:
		return a.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		a.inTxn, a.txnLSN = true, m.FinalLSN
		a.skip = m.FinalLSN < a.skipBefore
		if a.skip {
			return nil
		}
		a.s.mu.Lock()
		if a.s.pendingSince.IsZero() {
			a.s.pendingSince = m.CommitTime
		}
		a.s.mu.Unlock()
		if !a.groupOpen {
			if _, err := a.dst.Exec(ctx, "BEGIN"); err != nil {
				return fmt.Errorf("target %s: %w", a.s.db, err)
			}
			a.groupOpen, a.groupStarted, a.groupChanges = true, time.Now(), 0
		}
	case *pglogrepl.CommitMessage:
		a.inTxn = false
		a.lastCommit = time.Now()
		if !a.skip {
			a.groupEnd = m.TransactionEndLSN
		}
		if a.ddlInTxn {
			// What a DDL made may not be usable in the transaction that
			// made it (a new enum value): the group ends with it.
			a.ddlInTxn = false
			if a.groupOpen {
				if err := a.commitGroup(ctx); err != nil {
					return err
				}
			}
		}
	case *pglogrepl.InsertMessage:
		if r := a.rels[m.RelationID]; r != nil && r.ddlLog {
			if a.skip {
				return nil
			}
			a.groupChanges++
			if err := a.flush(ctx); err != nil {
				return err
			}
			a.ddlInTxn = true
			return a.replayDDL(ctx, m.Tuple, r)
		}
		return a.change(ctx, m.RelationID, func(r *relInfo, idem bool) error { return a.insert(ctx, r, m.Tuple, idem) })
	case *pglogrepl.UpdateMessage:
		return a.change(ctx, m.RelationID, func(r *relInfo, idem bool) error { return a.update(ctx, r, m, idem) })
	case *pglogrepl.DeleteMessage:
		return a.change(ctx, m.RelationID, func(r *relInfo, idem bool) error { return a.delete(ctx, r, m, idem) })
	case *pglogrepl.TruncateMessage:
		if a.skip {
			return nil
		}
		// One statement for the message's tables, as the source ran it:
		// a table a foreign key references can only be emptied with the
		// table that references it. A table copied again whole from a
		// later snapshot already lacks what a TRUNCATE before that
		// snapshot removed (and holds what came after it).
		var names []string
		for _, id := range m.RelationIDs {
			r := a.rels[id]
			if r == nil {
				return fmt.Errorf("source %s: TRUNCATE of relation %d before its description", a.s.db, id)
			}
			if b, ok := a.s.since[r.key()]; ok && a.txnLSN < b && a.s.keyless[r.key()] {
				continue
			}
			names = append(names, r.quoted())
		}
		if len(names) > 0 {
			if err := a.queue(ctx, "TRUNCATE ONLY "+strings.Join(names, ", "), nil); err != nil {
				return err
			}
		}
		a.groupChanges++
	}
	return nil
}

// change applies one row change unless its transaction is skipped; before
// a table's later-snapshot boundary, keyed tables take it idempotently and
// tables copied again whole not at all.
func (a *applier) change(ctx context.Context, id uint32, apply func(*relInfo, bool) error) error {
	if a.skip {
		return nil
	}
	r := a.rels[id]
	if r == nil {
		return fmt.Errorf("source %s: change to relation %d before its description", a.s.db, id)
	}
	idem := false
	if b, ok := a.s.since[r.key()]; ok && a.txnLSN < b {
		if a.s.keyless[r.key()] {
			return nil
		}
		idem = true
	}
	a.groupChanges++
	return apply(r, idem)
}

// commitGroup writes the position reached and commits the group.
func (a *applier) commitGroup(ctx context.Context) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	f := a.s.m.fence
	if a.groupEnd != 0 {
		// The mark carries the fence of cluster mode (fence.go): no extra
		// round trip.
		q, args := f.fold(`INSERT INTO `+markSchema+`.migrate_stream (job_id, lsn)`, "$1, $2::pg_lsn",
			"ON CONFLICT (job_id) DO UPDATE SET lsn = excluded.lsn, updated_at = now()", []any{a.s.m.spec.JobID, a.groupEnd.String()})
		tag, err := a.dst.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("target %s: write the stream's mark: %w", a.s.db, err)
		}
		if f.folded(tag) {
			a.dst.Exec(ctx, "ROLLBACK")
			return engine.Permanent(f.refused("commit", "changes up to "+a.groupEnd.String(), f.read(ctx, a.dst)))
		}
	} else if err := f.check(ctx, a.dst, "a group of changes"); err != nil {
		a.dst.Exec(ctx, "ROLLBACK")
		return engine.Permanent(err)
	}
	if _, err := a.dst.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("target %s: commit a group of changes: %w", a.s.db, err)
	}
	a.groupOpen = false
	a.s.setApplied(a.groupEnd)
	a.s.mu.Lock()
	a.s.pendingSince = time.Time{}
	a.s.mu.Unlock()
	return a.sendStatus(ctx)
}

// sourceLSN is the source's WAL insert position, for the lag.
func (s *stream) sourceLSN(ctx context.Context) (pglogrepl.LSN, error) {
	c, err := s.m.e.connect(ctx, s.m.spec.Source, "source", s.db)
	if err != nil {
		return 0, err
	}
	defer closeQuietly(c)
	var text string
	if err := c.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
		return 0, fmt.Errorf("source %s: read the WAL position: %w", s.db, err)
	}
	return pglogrepl.ParseLSN(text)
}
