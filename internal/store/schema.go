package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/opendts/opendts/internal/jobs"
)

// schemaVersion is the PRAGMA user_version this code writes. 0 is a new
// file or one written before versions (its layout is schemaV1); each step
// of migrations brings a file one version up, in one transaction.
const schemaVersion = 2

// schemaV1 is the layout opendts wrote before schema versions.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS jobs (
	job_id       TEXT PRIMARY KEY,
	job_name     TEXT NOT NULL,
	status       INTEGER NOT NULL,
	migrate_type INTEGER NOT NULL,
	run_mode     INTEGER NOT NULL,
	create_time  INTEGER NOT NULL,
	doc          TEXT NOT NULL,
	secrets      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_tags (
	job_id    TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
	tag_key   TEXT NOT NULL,
	tag_value TEXT NOT NULL,
	PRIMARY KEY (job_id, tag_key)
);
CREATE INDEX IF NOT EXISTS job_tags_key ON job_tags (tag_key, tag_value);
`

// schemaV2 adds what lets the API's cost stay flat as jobs accumulate: an
// index per order column, one by job_id that covers every filtered and
// ordered column, the duplicate check's index, and the columns progress
// reports write alone.
const schemaV2 = `
ALTER TABLE jobs ADD COLUMN progress      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN step_progress INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lag_seconds   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lag_megabytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET
	progress      = coalesce(json_extract(doc, '$.Detail.Progress'), 0),
	step_progress = coalesce(json_extract(doc, '$.Detail.CurrentStepProgress'), 0),
	lag_seconds   = coalesce(json_extract(doc, '$.Detail.SecondsBehindMaster'), 0),
	lag_megabytes = coalesce(json_extract(doc, '$.Detail.MasterSlaveDistance'), 0);
CREATE INDEX jobs_by_id        ON jobs (job_id, create_time, status, job_name, migrate_type, run_mode);
CREATE INDEX jobs_create_time  ON jobs (create_time, job_id);
CREATE INDEX jobs_status       ON jobs (status, job_id);
CREATE INDEX jobs_name         ON jobs (job_name, job_id);
CREATE INDEX jobs_migrate_type ON jobs (migrate_type, job_id);
CREATE INDEX jobs_run_mode     ON jobs (run_mode, job_id);
CREATE TABLE job_targets (
	job_id    TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
	target    TEXT NOT NULL,
	db_name   TEXT NOT NULL,
	PRIMARY KEY (job_id, target, db_name)
);
CREATE INDEX job_targets_target ON job_targets (target, db_name);
CREATE INDEX job_tags_by_job    ON job_tags (job_id, tag_key, tag_value);
`

// migrate creates or upgrades the schema of the database behind db (the
// writer).
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("the schema is version %d, newer than this opendts knows (%d): run a newer opendts", version, schemaVersion)
	}
	steps := []func(context.Context, *sql.Tx) error{
		0: func(ctx context.Context, tx *sql.Tx) error { _, err := tx.ExecContext(ctx, schemaV1); return err },
		1: toV2,
	}
	for v := version; v < schemaVersion; v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := steps[v](ctx, tx); err != nil {
			tx.Rollback()
			return fmt.Errorf("upgrade schema from version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("upgrade schema from version %d: %w", v, err)
		}
	}
	return nil
}

// toV2 adds the version 2 columns, indexes and table, and fills
// job_targets from the stored documents.
func toV2(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, schemaV2); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT doc FROM jobs`)
	if err != nil {
		return err
	}
	var docs []string
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return err
		}
		docs = append(docs, doc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, doc := range docs {
		j := &jobs.Job{}
		if err := json.Unmarshal([]byte(doc), j); err != nil {
			return fmt.Errorf("decode stored job: %w", err)
		}
		if err := writeTargets(ctx, tx, j); err != nil {
			return err
		}
	}
	return nil
}
