package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/opendts/opendts/internal/jobs"
)

func (s *Store) write(ctx context.Context, j *jobs.Job, insert bool) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	sealed := j.Sealed
	if sealed == "" {
		if sealed, err = jobs.SealPasswords(s.box, j); err != nil {
			return fmt.Errorf("seal passwords of job %s: %w", j.ID, err)
		}
	}
	// One write at a time (the writer connection allows no more): the
	// names in memory then follow the commits in their order.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	d := j.Detail
	args := []any{j.Name, int(j.Status), j.Option.MigrateType, j.Option.RunMode, j.CreateTime.UnixNano(), string(doc), sealed,
		d.Progress, d.CurrentStepProgress, d.SecondsBehindMaster, d.MasterSlaveDistance, j.ID}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO jobs (job_name, status, migrate_type, run_mode, create_time, doc, secrets,
			progress, step_progress, lag_seconds, lag_megabytes, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		var se *sqlite.Error
		if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
			return jobs.ErrExists
		}
	} else {
		var res sql.Result
		res, err = tx.ExecContext(ctx, `UPDATE jobs SET job_name = ?, status = ?, migrate_type = ?, run_mode = ?, create_time = ?, doc = ?, secrets = ?,
			progress = ?, step_progress = ?, lag_seconds = ?, lag_megabytes = ? WHERE job_id = ?`, args...)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				return jobs.ErrNotFound
			}
		}
	}
	if err != nil {
		return err
	}
	if !insert {
		if _, err := tx.ExecContext(ctx, `DELETE FROM job_tags WHERE job_id = ?`, j.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM job_targets WHERE job_id = ?`, j.ID); err != nil {
			return err
		}
	}
	for _, t := range j.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO job_tags (job_id, tag_key, tag_value) VALUES (?, ?, ?)`, j.ID, t.Key, t.Value); err != nil {
			return err
		}
	}
	if err := writeTargets(ctx, tx, j); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.names.set(j.ID, j.Name)
	return nil
}

// writeTargets indexes a job for the duplicate check (jobs.ConflictKeys).
func writeTargets(ctx context.Context, tx *sql.Tx, j *jobs.Job) error {
	target, dbs := jobs.ConflictKeys(j)
	for _, db := range dbs {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO job_targets (job_id, target, db_name) VALUES (?, ?, ?)`, j.ID, target, db); err != nil {
			return err
		}
	}
	return nil
}

// CreateJob inserts a new job.
func (s *Store) CreateJob(ctx context.Context, j *jobs.Job) error { return s.write(ctx, j, true) }

// UpdateJob replaces a stored job.
func (s *Store) UpdateJob(ctx context.Context, j *jobs.Job) error { return s.write(ctx, j, false) }

// DeleteJob removes a job, its tags and its targets.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.w.ExecContext(ctx, `DELETE FROM jobs WHERE job_id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return jobs.ErrNotFound
	}
	s.names.remove(id)
	return nil
}

// SaveProgress writes the progress and lag columns of a migrating job,
// and its copy's summary into the document (Detail.Copy) when p.Copy is
// set.
func (s *Store) SaveProgress(ctx context.Context, id string, p jobs.Progress) error {
	var copied any // NULL leaves the document as it is
	if p.Copy != nil {
		b, err := json.Marshal(p.Copy)
		if err != nil {
			return fmt.Errorf("encode the copy progress of job %s: %w", id, err)
		}
		copied = string(b)
	}
	args := []any{p.HasProgress, p.Overall, p.Current, p.HasLag, p.LagSeconds, p.LagMegabyte, id, copied}
	migrating := jobs.MigratingStatuses()
	for _, st := range migrating {
		args = append(args, int(st))
	}
	_, err := s.w.ExecContext(ctx, `UPDATE jobs SET
		progress      = CASE WHEN ?1 THEN ?2 ELSE progress END,
		step_progress = CASE WHEN ?1 THEN ?3 ELSE step_progress END,
		lag_seconds   = CASE WHEN ?4 THEN ?5 ELSE lag_seconds END,
		lag_megabytes = CASE WHEN ?4 THEN ?6 ELSE lag_megabytes END,
		doc           = CASE WHEN ?8 IS NULL THEN doc ELSE json_set(doc, '$.Detail.Copy', json(?8)) END
		WHERE job_id = ?7 AND status IN (`+placeholders(len(migrating))+`)`, args...)
	return err
}
