package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opendts/opendts/internal/engine"
)

// The fence of cluster mode (engine.Spec.Epoch). A transaction reaches one
// database only, so the job's epoch is recorded in _opendts.migrate_fence
// of every target database the run commits in: the maintenance database
// (the job's state) when the run opens, and each migrated database before
// the run reads its marks there (doneChunks, the stream's start). Recording
// refuses an epoch older than the one found, and its row lock waits for the
// commits that hold the row's share lock, so the marks the new owner reads
// next include every commit an older run made.
//
// Every transaction that commits rows or marks reads the fence row FOR
// SHARE in that transaction, last before COMMIT; a chunk's mark and the
// stream's LSN mark fold it in (INSERT ... SELECT ... FROM the fence FOR
// SHARE: no row inserted means the epoch is not the run's). What commits by
// itself (pg_restore, ALTER DATABASE, setval, dropping the marks) reads the
// fence of the maintenance database right before it starts: a window of
// one step, documented in docs/postgresql.md. Epoch 0 (a single node) has
// no fence: no table, no statement.
const fenceDDL = `CREATE SCHEMA IF NOT EXISTS ` + markSchema + `;
	CREATE TABLE IF NOT EXISTS ` + markSchema + `.migrate_fence (
		job_id text PRIMARY KEY, epoch bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`

// idleInTransaction bounds how long a target session of a fenced run may
// sit idle inside a transaction: a paused node's open transaction, and the
// row locks it holds, are rolled back by the server instead of blocking
// the new owner. A run's transactions are never idle that long: a chunk's
// COPY streams without pause and a change group commits within seconds.
const idleInTransaction = "60s"

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

// fence is one run's epoch.
type fence struct {
	jobID  string
	epoch  int64
	log    *slog.Logger
	logged sync.Once
}

func (f *fence) on() bool { return f != nil && f.epoch > 0 }

// refused returns the error of a refused write, logging the run's first
// at warn level.
func (f *fence) refused(op, what string, theirs int64) error {
	err := &fencedError{jobID: f.jobID, theirs: theirs, ours: f.epoch, op: op, what: what}
	f.logged.Do(func() {
		f.log.Warn("fenced: "+err.Error(), "job_id", f.jobID, "epoch", f.epoch, "owner_epoch", theirs)
	})
	return err
}

// claim records the run's epoch in the database c is connected to,
// refusing when a newer one is there.
func (f *fence) claim(ctx context.Context, c *pgx.Conn) error {
	if !f.on() {
		return nil
	}
	if _, err := c.Exec(ctx, fenceDDL); err != nil {
		return fmt.Errorf("target %s: create %s.migrate_fence: %w", c.Config().Database, markSchema, err)
	}
	tag, err := c.Exec(ctx, `INSERT INTO `+markSchema+`.migrate_fence AS f (job_id, epoch) VALUES ($1, $2)
		ON CONFLICT (job_id) DO UPDATE SET epoch = excluded.epoch, updated_at = now() WHERE f.epoch <= excluded.epoch`, f.jobID, f.epoch)
	if err != nil {
		return fmt.Errorf("target %s: record the run's epoch %d: %w", c.Config().Database, f.epoch, err)
	}
	if tag.RowsAffected() == 0 {
		return f.refused("open", "the run's start in database "+c.Config().Database, f.read(ctx, c))
	}
	return nil
}

// check fails when the epoch recorded in c's database is not the run's.
// Inside a transaction it is a locking read that the commit serialises
// with a newer claim; outside one it only narrows the window to the step
// that follows.
func (f *fence) check(ctx context.Context, c *pgx.Conn, what string) error {
	if !f.on() {
		return nil
	}
	var theirs int64
	err := c.QueryRow(ctx, `SELECT epoch FROM `+markSchema+`.migrate_fence WHERE job_id = $1 FOR SHARE`, f.jobID).Scan(&theirs)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && !isUndefinedTable(err) {
		return fmt.Errorf("target %s: read the job's fence: %w", c.Config().Database, err)
	}
	if theirs != f.epoch {
		return f.refused("commit", what, theirs)
	}
	return nil
}

// read returns the recorded epoch (0 when there is none), outside any
// transaction, for the message of a refused commit.
func (f *fence) read(ctx context.Context, c *pgx.Conn) int64 {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var theirs int64
	_ = c.QueryRow(rctx, `SELECT epoch FROM `+markSchema+`.migrate_fence WHERE job_id = $1`, f.jobID).Scan(&theirs)
	return theirs
}

// fold turns a mark's INSERT ... VALUES (..., $n) into the INSERT ...
// SELECT that inserts only under the run's epoch, given the VALUES list
// and the rest of the statement (ON CONFLICT ...); without a fence it is
// the plain INSERT. The epoch is the last argument.
func (f *fence) fold(insert, values, rest string, args []any) (string, []any) {
	if !f.on() {
		return insert + " VALUES (" + values + ") " + rest, args
	}
	n := len(args) + 1
	return fmt.Sprintf("%s SELECT %s FROM %s.migrate_fence WHERE job_id = $1 AND epoch = $%d FOR SHARE %s", insert, values, markSchema, n, rest),
		append(args, f.epoch)
}

// folded reports a folded mark that inserted nothing: the fence refused.
// The caller rolls back first; the epoch is read after.
func (f *fence) folded(tag pgconn.CommandTag) bool { return f.on() && tag.RowsAffected() == 0 }

// checkFence reads the fence of the maintenance database before a step
// that commits by itself (pg_restore, ALTER DATABASE, setval, dropping
// marks).
func (m *migration) checkFence(ctx context.Context, what string) error {
	if !m.fence.on() {
		return nil
	}
	c, err := m.e.connect(ctx, m.spec.Target, "target", "")
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	return m.fence.check(ctx, c, what)
}

// connectTarget opens a session on target database db for the run's
// writes: with a fence, one whose idle transactions the server ends
// (idleInTransaction).
func (m *migration) connectTarget(ctx context.Context, db string) (*pgx.Conn, error) {
	var extra map[string]string
	if m.fence.on() {
		extra = map[string]string{"idle_in_transaction_session_timeout": idleInTransaction}
	}
	return m.e.connectWith(ctx, m.spec.Target, "target", db, extra)
}
