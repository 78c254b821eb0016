package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// checkpointDB is where opendts keeps its progress on the target, beside
// the data it describes, so that a chunk's rows and its "done" mark commit
// in one transaction: a restart never loses or repeats a chunk. It is never
// migrated itself.
const checkpointDB = "__opendts"

const checkpointSchema = "CREATE DATABASE IF NOT EXISTS `" + checkpointDB + "` CHARACTER SET utf8mb4"

var checkpointTables = []string{
	"CREATE TABLE IF NOT EXISTS `" + checkpointDB + "`.`migrate_jobs` (" +
		"job_id VARCHAR(64) NOT NULL PRIMARY KEY, state LONGTEXT NOT NULL, " +
		"updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)) ENGINE=InnoDB",
	"CREATE TABLE IF NOT EXISTS `" + checkpointDB + "`.`migrate_chunks` (" +
		"job_id VARCHAR(64) NOT NULL, chunk_id INT NOT NULL, row_count BIGINT NOT NULL, byte_count BIGINT NOT NULL, " +
		"PRIMARY KEY (job_id, chunk_id)) ENGINE=InnoDB",
}

// jobState is what a restart needs: where the job was, the chunk plan
// (stable across restarts so "chunk 17" always means the same rows), the
// binlog position of the snapshot, and the target's read_only setting to
// restore.
type jobState struct {
	// Phase is the driver's; the rest is the engine's own.
	Phase          engine.Phase
	Plan           []chunk   `json:",omitempty"`
	Snapshot       *position `json:",omitempty"`
	ReadOnlyBefore *bool     `json:",omitempty"`
	// Deferred are the secondary indexes left out of CREATE TABLE, by
	// table (db NUL name), added after the rows.
	Deferred map[string][]string `json:",omitempty"`
	// Resumed counts restarts of the copy, for the job's log.
	Resumed int
	// Since holds, by table (db NUL name), the position of the snapshot
	// the table's rows were copied from when that is a later one than
	// Snapshot: a copy resumed after a crash reads what is left from a new
	// snapshot. The binlog up to there is already in those rows and is
	// skipped for the table.
	Since map[string]position `json:",omitempty"`
}

type checkpoint struct {
	db    *sql.DB
	jobID string
	// fence is the run's epoch in cluster mode (fence.go); every write
	// below commits only under it.
	fence *fence
}

// openCheckpoint creates the checkpoint tables and, with an epoch,
// records it for the job (failing with engine.ErrFenced under a newer).
func openCheckpoint(ctx context.Context, db *sql.DB, jobID string, epoch int64, log *slog.Logger, counters Counters) (*checkpoint, error) {
	if _, err := db.ExecContext(ctx, checkpointSchema); err != nil {
		return nil, fmt.Errorf("create the checkpoint database `%s` on the target (the target user needs ALL on `%s`.*): %w", checkpointDB, checkpointDB, err)
	}
	for _, q := range checkpointTables {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("create checkpoint tables on the target: %w", err)
		}
	}
	c := &checkpoint{db: db, jobID: jobID, fence: &fence{db: db, jobID: jobID, epoch: epoch, log: log, counters: counters}}
	if err := c.fence.claim(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// load returns the job's saved state, or nil for a new job.
func (c *checkpoint) load(ctx context.Context) (*jobState, error) {
	var text string
	err := c.db.QueryRowContext(ctx, "SELECT state FROM `"+checkpointDB+"`.`migrate_jobs` WHERE job_id = ?", c.jobID).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint: %w", err)
	}
	var st jobState
	if err := json.Unmarshal([]byte(text), &st); err != nil {
		return nil, fmt.Errorf("the checkpoint of %s is damaged: %w", c.jobID, err)
	}
	return &st, nil
}

func (c *checkpoint) save(ctx context.Context, st *jobState) error {
	text, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = c.fence.write(ctx, "saving the checkpoint", func(db execer) error {
		_, err := db.ExecContext(ctx, "INSERT INTO `"+checkpointDB+"`.`migrate_jobs` (job_id, state) VALUES (?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state)", c.jobID, string(text))
		return err
	})
	if err != nil {
		return fmt.Errorf("save the checkpoint: %w", err)
	}
	return nil
}

// doneChunks returns the chunks already committed, with their counts.
func (c *checkpoint) doneChunks(ctx context.Context) (map[int][2]int64, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT chunk_id, row_count, byte_count FROM `"+checkpointDB+"`.`migrate_chunks` WHERE job_id = ?", c.jobID)
	if err != nil {
		return nil, fmt.Errorf("read done chunks: %w", err)
	}
	defer rows.Close()
	out := map[int][2]int64{}
	for rows.Next() {
		var id int
		var n, b int64
		if err := rows.Scan(&id, &n, &b); err != nil {
			return nil, err
		}
		out[id] = [2]int64{n, b}
	}
	return out, rows.Err()
}

// markChunkSQL records a chunk inside the transaction that wrote its rows.
const markChunkSQL = "INSERT INTO `" + checkpointDB + "`.`migrate_chunks` (job_id, chunk_id, row_count, byte_count) VALUES (?, ?, ?, ?)"

// forget removes the job's checkpoint (not its fence: the epoch stays
// recorded).
func (c *checkpoint) forget(ctx context.Context) error {
	return c.fence.write(ctx, "clearing the checkpoint", func(db execer) error {
		return c.clear(ctx, db, "DELETE FROM `"+checkpointDB+"`.`migrate_jobs` WHERE job_id = ?")
	})
}

// clear deletes the job's chunk marks and binlog position, and what more
// is given.
func (c *checkpoint) clear(ctx context.Context, db execer, more ...string) error {
	for _, q := range append([]string{"DELETE FROM `" + checkpointDB + "`.`migrate_chunks` WHERE job_id = ?"}, more...) {
		if _, err := db.ExecContext(ctx, q, c.jobID); err != nil {
			return fmt.Errorf("clear the checkpoint: %w", err)
		}
	}
	// The binlog position table exists only once a job replicated.
	_, err := db.ExecContext(ctx, "DELETE FROM "+binlogPositionsTable+" WHERE job_id = ?", c.jobID)
	var myErr *mysql.MySQLError
	if err != nil && !(errors.As(err, &myErr) && myErr.Number == 1146) {
		return fmt.Errorf("clear the checkpoint: %w", err)
	}
	return nil
}

// finish records that the job is done: its chunk and position rows go, a
// small "done" row stays, so that a restart between this and the job
// service recording success finds the job finished instead of starting it
// over. A fresh start of the job (forget) removes it. The database stays:
// other jobs may be about to use it.
func (c *checkpoint) finish(ctx context.Context, readOnlyBefore *bool) error {
	text, err := json.Marshal(&jobState{Phase: engine.PhaseDone, ReadOnlyBefore: readOnlyBefore})
	if err != nil {
		return err
	}
	return c.fence.write(ctx, "finishing the checkpoint", func(db execer) error {
		if err := c.clear(ctx, db); err != nil {
			return err
		}
		_, err := db.ExecContext(ctx, "INSERT INTO `"+checkpointDB+"`.`migrate_jobs` (job_id, state) VALUES (?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state)", c.jobID, string(text))
		if err != nil {
			return fmt.Errorf("save the checkpoint: %w", err)
		}
		return nil
	})
}
