package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// markSchema holds opendts's own tables on the target, beside the data
// they describe: the job's state in the maintenance database, and in each
// migrated database the marks of committed chunks, written in the
// transaction that writes the chunk's rows so that a restart never loses
// or repeats one. It is never migrated itself, and a finished job drops it
// from the migrated databases.
const markSchema = "_opendts"

// jobState is what a restart needs: the phase, the chunk plan (stable
// across restarts so that chunk 17 always means the same rows), the target
// databases opendts created and the read-only settings to give back.
type jobState struct {
	Phase engine.Phase
	Plan  []chunk `json:",omitempty"`
	// Planned is set once Plan is made (a job with nothing to copy has an
	// empty one).
	Planned bool `json:",omitempty"`
	// Databases are the source databases of the job, in order.
	Databases []string `json:",omitempty"`
	// ReadOnlyBefore is each target database's default_transaction_read_only
	// before the run held it ("" when it was not set for the database).
	ReadOnlyBefore map[string]string `json:",omitempty"`
	// PreDataDone are the databases whose pre-data is restored: a
	// structure step that runs again skips them.
	PreDataDone []string `json:",omitempty"`
	// Resumed counts restarts of the copy, for the job's log.
	Resumed int `json:",omitempty"`
	// SlotLSN is the consistent point of the job's replication slot (full
	// + incremental jobs): the first snapshot's boundary.
	SlotLSN uint64 `json:",omitempty"`
	// DDLCapture says the source's DDL is captured (ddl_capture.go).
	DDLCapture bool `json:",omitempty"`
	// Since holds, by table ("schema.table"), the boundary of a later
	// snapshot the table's rows were copied from (a resumed copy): the
	// changes before it are applied idempotently (keyed tables) or not
	// at all (tables copied again whole).
	Since map[string]uint64 `json:",omitempty"`
}

// checkpoint is the job's row in the target's maintenance database.
type checkpoint struct {
	e     *Engine
	ep    engine.Endpoint
	jobID string
	// fence is the run's epoch in cluster mode (fence.go): the state
	// commits only under it.
	fence *fence
}

func (cp *checkpoint) conn(ctx context.Context) (*pgx.Conn, error) {
	return cp.e.connect(ctx, cp.ep, "target", "")
}

func (cp *checkpoint) ensure(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+markSchema+`;
		CREATE TABLE IF NOT EXISTS `+markSchema+`.migrate_jobs (
			job_id text PRIMARY KEY, state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("target: create %s.migrate_jobs in database %s (the target user needs CREATE there): %w", markSchema, c.Config().Database, err)
	}
	return nil
}

func (cp *checkpoint) load(ctx context.Context) (*jobState, error) {
	c, err := cp.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer closeQuietly(c)
	var text []byte
	err = c.QueryRow(ctx, `SELECT state::text FROM `+markSchema+`.migrate_jobs WHERE job_id = $1`, cp.jobID).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) || isUndefinedTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("target: read the job's checkpoint: %w", err)
	}
	var st jobState
	if err := json.Unmarshal(text, &st); err != nil {
		return nil, fmt.Errorf("target: the job's checkpoint is damaged: %w", err)
	}
	return &st, nil
}

func (cp *checkpoint) save(ctx context.Context, st *jobState) error {
	text, err := json.Marshal(st)
	if err != nil {
		return err
	}
	c, err := cp.conn(ctx)
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	if err := cp.ensure(ctx, c); err != nil {
		return err
	}
	q, args := cp.fence.fold(`INSERT INTO `+markSchema+`.migrate_jobs (job_id, state)`, "$1, $2::jsonb",
		"ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, updated_at = now()", []any{cp.jobID, string(text)})
	tag, err := c.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("target: save the job's checkpoint: %w", err)
	}
	if cp.fence.folded(tag) {
		return cp.fence.refused("commit", "the job's state", cp.fence.read(ctx, c))
	}
	return nil
}

func (cp *checkpoint) forget(ctx context.Context) error {
	c, err := cp.conn(ctx)
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	const forget = `DELETE FROM ` + markSchema + `.migrate_jobs WHERE job_id = $1`
	if !cp.fence.on() {
		if _, err := c.Exec(ctx, forget, cp.jobID); err != nil && !isUndefinedTable(err) {
			return fmt.Errorf("target: forget the job's checkpoint: %w", err)
		}
		return nil
	}
	// Under a fence, in a transaction that checks it (the table must
	// exist: a failed statement would end the transaction).
	if err := cp.ensure(ctx, c); err != nil {
		return err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, forget, cp.jobID); err != nil {
		return fmt.Errorf("target: forget the job's checkpoint: %w", err)
	}
	if err := cp.fence.check(ctx, c, "forgetting the job's state"); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// isUndefinedTable reports SQLSTATE 42P01 (or 3F000, no such schema).
func isUndefinedTable(err error) bool {
	return sqlState(err) == "42P01" || sqlState(err) == "3F000"
}

// chunkMarks is the DDL of a migrated database's chunk marks.
const chunkMarks = `CREATE SCHEMA IF NOT EXISTS ` + markSchema + `;
	CREATE TABLE IF NOT EXISTS ` + markSchema + `.migrate_chunks (
		job_id text NOT NULL, chunk_id int NOT NULL, row_count bigint NOT NULL,
		PRIMARY KEY (job_id, chunk_id))`

// doneChunks returns the chunks of the job committed in the target
// database c is connected to, with their row counts, after recording the
// run's epoch there (fence.go).
func doneChunks(ctx context.Context, c *pgx.Conn, jobID string, f *fence) (map[int]int64, error) {
	if _, err := c.Exec(ctx, chunkMarks); err != nil {
		return nil, fmt.Errorf("target %s: create %s.migrate_chunks: %w", c.Config().Database, markSchema, err)
	}
	if err := f.claim(ctx, c); err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, `SELECT chunk_id, row_count FROM `+markSchema+`.migrate_chunks WHERE job_id = $1`, jobID)
	if err != nil {
		return nil, fmt.Errorf("target %s: read chunk marks: %w", c.Config().Database, err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var id int
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// dropMarks removes the job's chunk marks and stream mark from a target
// database, and the schema when no other job has marks there.
func dropMarks(ctx context.Context, c *pgx.Conn, jobID string) error {
	others := false
	for _, table := range []string{"migrate_chunks", "migrate_stream"} {
		_, err := c.Exec(ctx, `DELETE FROM `+markSchema+`.`+table+` WHERE job_id = $1`, jobID)
		if isUndefinedTable(err) {
			continue
		}
		if err != nil {
			return err
		}
		var left bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+markSchema+`.`+table+`)`).Scan(&left); err != nil {
			return err
		}
		others = others || left
	}
	// The job's own fence row stays (the maintenance database may be a
	// migrated one); the schema goes only when no other job has one.
	var fenced bool
	err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+markSchema+`.migrate_fence WHERE job_id <> $1)`, jobID).Scan(&fenced)
	if err != nil && !isUndefinedTable(err) {
		return err
	}
	others = others || fenced
	var schema bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '`+markSchema+`')`).Scan(&schema); err != nil {
		return err
	}
	if !schema || others || c.Config().Database == maintenanceDB {
		return nil
	}
	_, err = c.Exec(ctx, `DROP SCHEMA `+markSchema+` CASCADE`)
	return err
}

// restartTable empties a target table and its marks in one transaction.
func restartTable(ctx context.Context, c *pgx.Conn, jobID string, f *fence, t engine.TableRef, ids []int) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "TRUNCATE ONLY "+quoteQualified(t.Schema, t.Table)); err != nil {
		return fmt.Errorf("target: empty %s to copy it again: %w", t, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+markSchema+`.migrate_chunks WHERE job_id = $1 AND chunk_id = ANY($2)`, jobID, ids); err != nil {
		return err
	}
	if err := f.check(ctx, c, "restarting "+t.String()); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
