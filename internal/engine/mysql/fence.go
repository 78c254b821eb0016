package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	gmysql "github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// The fence of cluster mode (engine.Spec.Epoch). A run records its claim's
// epoch in migrate_fence when it opens, refusing to open under a newer one,
// and every target transaction that commits rows or checkpoint state reads
// the fence row with a shared lock inside that transaction, right before it
// commits: a newer owner's claim (which updates the row) then either waits
// for that commit, and finds its work in the checkpoint, or commits first,
// and the older run sees the newer epoch and rolls back. The lock is taken
// last so that a run paused mid-transaction holds it only if it was paused
// between the check and its COMMIT.
//
// Where it can, the check is folded into a statement the transaction sends
// anyway: a chunk's done mark and the binlog position are single-row
// INSERTs whose one value comes from a locking subquery of the fence, NULL
// (and so error 1048, whatever the sql_mode) when the epoch is not the
// run's. Epoch 0 (a single node) has no fence: no table, no statement.
const fenceTable = "`" + checkpointDB + "`.`migrate_fence`"

const fenceDDL = "CREATE TABLE IF NOT EXISTS " + fenceTable + " (" +
	"job_id VARCHAR(64) NOT NULL PRIMARY KEY, epoch BIGINT NOT NULL, " +
	"updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"

// fencedError is a commit (or an open) refused because another run of the
// job holds a newer epoch. It wraps engine.ErrFenced.
type fencedError struct {
	jobID        string
	theirs, ours int64
	// op is "commit" or "open"; what says which write was refused.
	op, what string
}

func (e *fencedError) Error() string {
	return fmt.Sprintf("%s refused: job %s is now owned by epoch %d (this run has epoch %d; %s): %v",
		e.op, e.jobID, e.theirs, e.ours, e.what, engine.ErrFenced)
}

func (e *fencedError) Unwrap() error { return engine.ErrFenced }

// fence is one run's epoch on the job's target.
type fence struct {
	db     *sql.DB
	jobID  string
	epoch  int64
	log    *slog.Logger
	logged sync.Once
	// counters are told of each refusal when they count them.
	counters Counters
}

// rowQueryer is a pool, a connection or a transaction.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// on reports whether the run is fenced at all.
func (f *fence) on() bool { return f != nil && f.epoch > 0 }

// refused returns the error of a refused write, logging the first one of
// the run at warn level.
func (f *fence) refused(what string, theirs int64) error {
	op := "commit"
	if what == "open" {
		op, what = "open", "the run's start"
	}
	err := &fencedError{jobID: f.jobID, theirs: theirs, ours: f.epoch, op: op, what: what}
	if fc, ok := f.counters.(FencedCounter); ok {
		fc.FencedWrite(f.jobID)
	}
	f.logged.Do(func() {
		f.log.Warn("fenced: "+err.Error(), "job_id", f.jobID, "epoch", f.epoch, "owner_epoch", theirs)
	})
	return err
}

// claim records the run's epoch for the job when the run opens, refusing
// when a newer one is recorded. Its row lock waits for the commits of an
// older run that hold the fence row's shared lock. Two claims at once on
// a job without a row may deadlock on the new key: the loser tries again.
func (f *fence) claim(ctx context.Context) error {
	if !f.on() {
		return nil
	}
	if _, err := f.db.ExecContext(ctx, fenceDDL); err != nil {
		return fmt.Errorf("create the fence table on the target: %w", err)
	}
	for attempt := 1; ; attempt++ {
		err := f.claimOnce(ctx)
		var myErr *gmysql.MySQLError
		if errors.As(err, &myErr) && myErr.Number == 1213 && attempt < 5 {
			continue
		}
		if err != nil && !errors.Is(err, engine.ErrFenced) {
			return fmt.Errorf("record the run's epoch %d on the target: %w", f.epoch, err)
		}
		return err
	}
}

func (f *fence) claimOnce(ctx context.Context) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "INSERT INTO "+fenceTable+" (job_id, epoch) VALUES (?, ?) "+
		"ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))", f.jobID, f.epoch)
	if err != nil {
		return err
	}
	var theirs int64
	if err := tx.QueryRowContext(ctx, "SELECT epoch FROM "+fenceTable+" WHERE job_id = ? FOR UPDATE", f.jobID).Scan(&theirs); err != nil {
		return err
	}
	if theirs > f.epoch {
		return f.refused("open", theirs)
	}
	return tx.Commit()
}

// check fails when the recorded epoch is not the run's. Inside a
// transaction it is a locking read that the transaction's commit
// serialises with a newer claim; outside one (before DDL, which commits by
// itself) it only narrows the window to the statement that follows.
func (f *fence) check(ctx context.Context, q rowQueryer, what string) error {
	if !f.on() {
		return nil
	}
	theirs, err := f.read(ctx, q, " LOCK IN SHARE MODE")
	if err != nil {
		return err
	}
	if theirs != f.epoch {
		return f.refused(what, theirs)
	}
	return nil
}

// read returns the recorded epoch (0 when the row is gone).
func (f *fence) read(ctx context.Context, q rowQueryer, lock string) (int64, error) {
	var theirs int64
	err := q.QueryRowContext(ctx, "SELECT epoch FROM "+fenceTable+" WHERE job_id = ?"+lock, f.jobID).Scan(&theirs)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read the job's fence on the target: %w", err)
	}
	return theirs, nil
}

// explain turns the failure of a statement with a folded fence into the
// fenced error when the fence is what failed it (the recorded epoch is
// not the run's); other failures are returned as they are. It reads the
// fence on its own connection, after the failed transaction.
func (f *fence) explain(ctx context.Context, what string, err error) error {
	if err == nil || !f.on() || errors.Is(err, engine.ErrFenced) {
		return err
	}
	var myErr *gmysql.MySQLError
	if !errors.As(err, &myErr) || myErr.Number != 1048 {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	theirs, rerr := f.read(rctx, f.db, "")
	if rerr != nil || theirs == f.epoch {
		return err
	}
	return f.refused(what, theirs)
}

// markSQL is the statement that records a chunk done inside the
// transaction that wrote its rows, with the fence folded in, and its
// arguments.
func (f *fence) markSQL(chunkID int, rows, bytes int64) (string, []any) {
	if !f.on() {
		return markChunkSQL, []any{f.jobID, chunkID, rows, bytes}
	}
	return "INSERT INTO `" + checkpointDB + "`.`migrate_chunks` (job_id, chunk_id, row_count, byte_count) VALUES (?, " +
			"(SELECT ? FROM " + fenceTable + " WHERE job_id = ? AND epoch = ? LOCK IN SHARE MODE), ?, ?)",
		[]any{f.jobID, chunkID, f.jobID, f.epoch, rows, bytes}
}

// positionSQL is savePositionSQL with the fence folded in, and its
// arguments.
func (f *fence) positionSQL(p position) (string, []any) {
	if !f.on() {
		return savePositionSQL, []any{f.jobID, p.File, p.Pos}
	}
	return "INSERT INTO " + binlogPositionsTable + " (job_id, file, pos) VALUES (?, " +
			"(SELECT ? FROM " + fenceTable + " WHERE job_id = ? AND epoch = ? LOCK IN SHARE MODE), ?) " +
			"ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos)",
		[]any{f.jobID, p.File, f.jobID, f.epoch, p.Pos}
}

// appendFileValue appends the file value of a position INSERT written
// out in full (a batch of the applier): the quoted name, or with a fence
// the locking subquery that yields it only under the run's epoch.
func (f *fence) appendFileValue(buf []byte, file string) []byte {
	if f.on() {
		buf = append(buf, "(SELECT '"...)
	} else {
		buf = append(buf, '\'')
	}
	buf = appendEscaped(buf, []byte(file))
	buf = append(buf, '\'')
	if f.on() {
		buf = append(buf, " FROM "+fenceTable+" WHERE job_id = '"...)
		buf = appendEscaped(buf, []byte(f.jobID))
		buf = append(buf, "' AND epoch = "...)
		buf = strconv.AppendInt(buf, f.epoch, 10)
		buf = append(buf, " LOCK IN SHARE MODE)"...)
	}
	return buf
}

// savePosition writes the applied position outside a group's
// transaction (after a DDL, or when only unselected tables changed).
func (f *fence) savePosition(ctx context.Context, db execer, p position) error {
	q, args := f.positionSQL(p)
	_, err := db.ExecContext(ctx, q, args...)
	return f.explain(ctx, "saving the binlog position", err)
}

// write runs fn in a transaction that checks the fence before it commits;
// without a fence, fn runs on the pool directly, as it always did.
func (f *fence) write(ctx context.Context, what string, fn func(execer) error) error {
	if !f.on() {
		return fn(f.db)
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := f.check(ctx, tx, what); err != nil {
		return err
	}
	return tx.Commit()
}

// writerVars are the session settings of a target pool that writes rows:
// vars, and with a fence a wait_timeout of FencedIdleTimeout. The
// server then closes a session that sent nothing for that long, rolling
// back its transaction: a paused node's open chunk or group stops
// holding row locks the new owner waits on. The run's own sessions are
// never idle that long inside a transaction (a chunk's statements follow
// each other as fast as the source is read); an idle pooled session that
// the server closed is replaced by the driver, and the pools below drop
// theirs before the server does.
func (m *migration) writerVars(vars map[string]string) map[string]string {
	if m.spec.Epoch <= 0 {
		return vars
	}
	out := map[string]string{"wait_timeout": strconv.Itoa(max(1, int(m.e.cfg.FencedIdleTimeout/time.Second)))}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

// writerPool is the target pool the copy's chunks are written through:
// the run's own, or with a fence one of its own with writerVars.
func (m *migration) writerPool(ctx context.Context) (*sql.DB, func(), error) {
	if m.spec.Epoch <= 0 {
		return m.dst, func() {}, nil
	}
	w, err := m.e.openPool(ctx, m.spec.Target, "target", m.e.cfg.Workers+2, m.writerVars(m.targetVars), false)
	if err != nil {
		return nil, nil, err
	}
	w.SetConnMaxIdleTime(m.e.cfg.FencedIdleTimeout / 2)
	return w, func() { w.Close() }, nil
}
