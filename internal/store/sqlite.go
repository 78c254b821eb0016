// Package store keeps migration jobs in an embedded SQLite database
// (modernc.org/sqlite, no cgo), one file in the data directory.
//
// What is persisted: one row per job in `jobs` (the job as a JSON document,
// plus the columns DescribeMigrateJobs filters and orders by) and its tags
// in `job_tags`. Passwords are never in the document: they are sealed with
// AES-GCM (internal/secret) into the `secrets` column.
//
// Who writes: only the job service, one process at a time. A job's row and
// its tags are written in one transaction.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
)

// Store is the SQLite job store.
type Store struct {
	db  *sql.DB
	box *secret.Box
}

var _ jobs.Store = (*Store)(nil)

const schema = `
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

// Open opens (creating if needed) the database at path.
func Open(path string, box *secret.Box) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open job store %s: %w", path, err)
	}
	// One writer at a time is what SQLite does anyway; one connection
	// avoids "database is locked" between our own goroutines.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create job store schema in %s: %w", path, err)
	}
	return &Store{db: db, box: box}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// secrets are the sealed parts of a job.
type secrets struct {
	Src   string
	Dst   string
	Multi []string `json:",omitempty"`
}

func (s *Store) seal(j *jobs.Job) (string, error) {
	sec := secrets{Src: j.Src.Password, Dst: j.Dst.Password}
	for _, m := range j.SrcInfoMulti {
		sec.Multi = append(sec.Multi, m.Password)
	}
	plain, err := json.Marshal(sec)
	if err != nil {
		return "", err
	}
	return s.box.Seal(string(plain))
}

func (s *Store) open(j *jobs.Job, sealed string) error {
	plain, err := s.box.Open(sealed)
	if err != nil {
		return fmt.Errorf("job %s: %w", j.ID, err)
	}
	if plain == "" {
		return nil
	}
	var sec secrets
	if err := json.Unmarshal([]byte(plain), &sec); err != nil {
		return fmt.Errorf("job %s: sealed passwords are damaged: %w", j.ID, err)
	}
	j.Src.Password, j.Dst.Password = sec.Src, sec.Dst
	for i := range j.SrcInfoMulti {
		if i < len(sec.Multi) {
			j.SrcInfoMulti[i].Password = sec.Multi[i]
		}
	}
	return nil
}

func (s *Store) write(ctx context.Context, j *jobs.Job, insert bool) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	sealed, err := s.seal(j)
	if err != nil {
		return fmt.Errorf("seal passwords of job %s: %w", j.ID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	args := []any{j.Name, int(j.Status), j.Option.MigrateType, j.Option.RunMode, j.CreateTime.UnixNano(), string(doc), sealed, j.ID}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO jobs (job_name, status, migrate_type, run_mode, create_time, doc, secrets, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	} else {
		var res sql.Result
		res, err = tx.ExecContext(ctx, `UPDATE jobs SET job_name = ?, status = ?, migrate_type = ?, run_mode = ?, create_time = ?, doc = ?, secrets = ? WHERE job_id = ?`, args...)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				return jobs.ErrNotFound
			}
		}
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM job_tags WHERE job_id = ?`, j.ID); err != nil {
		return err
	}
	for _, t := range j.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO job_tags (job_id, tag_key, tag_value) VALUES (?, ?, ?)`, j.ID, t.Key, t.Value); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// CreateJob inserts a new job.
func (s *Store) CreateJob(ctx context.Context, j *jobs.Job) error { return s.write(ctx, j, true) }

// UpdateJob replaces a stored job.
func (s *Store) UpdateJob(ctx context.Context, j *jobs.Job) error { return s.write(ctx, j, false) }

// DeleteJob removes a job and its tags.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM jobs WHERE job_id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return jobs.ErrNotFound
	}
	return nil
}

// GetJob reads one job.
func (s *Store) GetJob(ctx context.Context, id string) (*jobs.Job, error) {
	list, err := s.query(ctx, `SELECT doc, secrets FROM jobs WHERE job_id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, jobs.ErrNotFound
	}
	return list[0], nil
}

// AllJobs reads every job, oldest first.
func (s *Store) AllJobs(ctx context.Context) ([]*jobs.Job, error) {
	return s.query(ctx, `SELECT doc, secrets FROM jobs ORDER BY create_time, job_id`)
}

var orderColumns = map[string]string{
	"":            "create_time",
	"JobId":       "job_id",
	"Status":      "status",
	"JobName":     "job_name",
	"MigrateType": "migrate_type",
	"RunMode":     "run_mode",
	"CreateTime":  "create_time",
}

// ListJobs selects, orders and pages jobs in SQL.
func (s *Store) ListJobs(ctx context.Context, q jobs.Query) ([]*jobs.Job, int, error) {
	col, ok := orderColumns[q.Order]
	if !ok {
		return nil, 0, fmt.Errorf("unknown order %q", q.Order)
	}
	var where []string
	var args []any
	if q.JobID != "" {
		where = append(where, "job_id = ?")
		args = append(args, q.JobID)
	}
	if q.JobName != "" {
		where = append(where, "instr(job_name, ?) > 0")
		args = append(args, q.JobName)
	}
	for _, f := range q.Tags {
		cond := "EXISTS (SELECT 1 FROM job_tags t WHERE t.job_id = jobs.job_id AND t.tag_key = ?"
		args = append(args, f.Key)
		if len(f.Values) > 0 {
			cond += " AND t.tag_value IN (?" + strings.Repeat(", ?", len(f.Values)-1) + ")"
			for _, v := range f.Values {
				args = append(args, v)
			}
		}
		where = append(where, cond+")")
	}
	filter := ""
	if len(where) > 0 {
		filter = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM jobs`+filter, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	query := fmt.Sprintf(`SELECT doc, secrets FROM jobs%s ORDER BY %s %s, job_id %s LIMIT ? OFFSET ?`, filter, col, dir, dir)
	list, err := s.query(ctx, query, append(args, limit, q.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	return list, total, nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]*jobs.Job, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*jobs.Job
	for rows.Next() {
		var doc, sealed string
		if err := rows.Scan(&doc, &sealed); err != nil {
			return nil, err
		}
		j := &jobs.Job{}
		if err := json.Unmarshal([]byte(doc), j); err != nil {
			return nil, fmt.Errorf("decode stored job: %w", err)
		}
		if err := s.open(j, sealed); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Ping checks that the database answers, for readiness.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return errors.Join(errors.New("job store unavailable"), err)
	}
	return nil
}
