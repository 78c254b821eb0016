package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opendts/opendts/internal/jobs"
)

// jobColumns are what a decoded job is read from: the document and the
// columns that override it.
const jobColumns = `j.job_id, j.doc, j.progress, j.step_progress, j.lag_seconds, j.lag_megabytes`

// GetJob reads one job, passwords included.
func (s *Store) GetJob(ctx context.Context, id string) (*jobs.Job, error) {
	j, err := s.GetJobState(ctx, id)
	if err != nil {
		return nil, err
	}
	sealed := j.Sealed
	j.Sealed = ""
	if err := jobs.OpenPasswords(s.box, j, sealed); err != nil {
		return nil, err
	}
	return j, nil
}

// GetJobState reads one job and leaves its passwords sealed (Job.Sealed).
func (s *Store) GetJobState(ctx context.Context, id string) (*jobs.Job, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+jobColumns+`, j.secrets FROM jobs j WHERE j.job_id = ?`, id)
	var sealed string
	j, err := scanJob(row, nil, &sealed)
	if err == sql.ErrNoRows {
		return nil, jobs.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	j.Sealed = sealed
	return j, nil
}

type scanner interface{ Scan(...any) error }

// scanJob reads a row of jobColumns (and extra), through the decoded
// cache when one is given.
func scanJob(row scanner, cache *decoded, extra ...any) (*jobs.Job, error) {
	var id string
	var doc []byte
	var p jobs.Detail
	if err := row.Scan(append([]any{&id, &doc, &p.Progress, &p.CurrentStepProgress, &p.SecondsBehindMaster, &p.MasterSlaveDistance}, extra...)...); err != nil {
		return nil, err
	}
	var j *jobs.Job
	if cache != nil {
		var err error
		if j, err = cache.job(id, doc); err != nil {
			return nil, err
		}
	} else {
		j = &jobs.Job{}
		if err := json.Unmarshal(doc, j); err != nil {
			return nil, fmt.Errorf("decode stored job: %w", err)
		}
	}
	j.Detail.Progress, j.Detail.CurrentStepProgress = p.Progress, p.CurrentStepProgress
	j.Detail.SecondsBehindMaster, j.Detail.MasterSlaveDistance = p.SecondsBehindMaster, p.MasterSlaveDistance
	return j, nil
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

// ListJobs filters, orders and pages in SQL on indexed columns: the page's
// ids come from an index, and only the page's documents are read and
// decoded. Passwords are not read.
func (s *Store) ListJobs(ctx context.Context, q jobs.Query) ([]*jobs.Job, int, error) {
	col, ok := orderColumns[q.Order]
	if !ok {
		return nil, 0, fmt.Errorf("unknown order %q", q.Order)
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	if len(q.Tags) == 1 && q.JobID == "" && q.JobName == "" && len(q.Statuses) == 0 {
		return s.listByTag(ctx, q, col, dir, limit)
	}
	var where []string
	var args []any
	// byID: the filter hands SQLite job ids (JobId, a tag) or must look at
	// every name (JobName); the index by job_id that covers every column
	// filtered or ordered on answers without reading rows. SQLite would
	// pick the primary key's index and read each row.
	byID := q.JobID != "" || len(q.Tags) > 0
	if q.JobID != "" {
		where = append(where, "job_id = ?")
		args = append(args, q.JobID)
	}
	if q.JobName != "" {
		// A part of the name: no index finds it. The names kept in memory
		// give the ids that match; when too many do, the index by job_id,
		// which holds every filtered and ordered column, is scanned once
		// (below), without reading a row. instr keeps the stored name the
		// judge.
		ids, ok := s.names.matching(q.JobName)
		if ok && len(ids) == 0 {
			return nil, 0, nil
		}
		if ok {
			list, _ := json.Marshal(ids)
			where = append(where, "job_id IN (SELECT value FROM json_each(?))")
			args = append(args, string(list))
		}
		byID = true
		where = append(where, "instr(job_name, ?) > 0")
		args = append(args, q.JobName)
	}
	if len(q.Statuses) > 0 {
		where = append(where, "status IN ("+placeholders(len(q.Statuses))+")")
		for _, st := range q.Statuses {
			args = append(args, int(st))
		}
	}
	for _, f := range q.Tags {
		cond := "job_id IN (SELECT job_id FROM job_tags WHERE tag_key = ?"
		args = append(args, f.Key)
		if len(f.Values) > 0 {
			cond += " AND tag_value IN (" + placeholders(len(f.Values)) + ")"
			for _, v := range f.Values {
				args = append(args, v)
			}
		}
		where = append(where, cond+")")
	}
	filter := ""
	if byID {
		filter = " INDEXED BY jobs_by_id"
	}
	if len(where) > 0 {
		filter += " WHERE " + strings.Join(where, " AND ")
	}
	if q.JobName != "" {
		// The name scan visits every job anyway: one pass counts and pages
		// (count(*) OVER ()); only an empty page needs the count on its own.
		page, total, err := s.page(ctx, col, dir, filter, ", count(*) OVER ()", append(args, limit, q.Offset))
		if err != nil || len(page) > 0 {
			return page, total, err
		}
	}
	total, err := s.count(ctx, filter, args)
	if err != nil || total == 0 || q.Offset >= total {
		return nil, total, err
	}
	page, _, err := s.page(ctx, col, dir, filter, "", append(args, limit, q.Offset))
	return page, total, err
}

// listByTag answers the one-TagFilter query. Its count comes from the tag
// index alone (a job has a key once). A common tag is paged by walking the
// order's index and probing each job's tags: about (Offset+Limit) x the
// jobs per match probes; a rare one by sorting its matches.
func (s *Store) listByTag(ctx context.Context, q jobs.Query, col, dir string, limit int) ([]*jobs.Job, int, error) {
	f := q.Tags[0]
	cond := "tag_key = ?"
	args := []any{f.Key}
	if len(f.Values) > 0 {
		cond += " AND tag_value IN (" + placeholders(len(f.Values)) + ")"
		for _, v := range f.Values {
			args = append(args, v)
		}
	}
	var total int
	rows, err := s.query(ctx, `SELECT count(*) FROM job_tags WHERE `+cond, args...)
	if err != nil {
		return nil, 0, err
	}
	for rows.Next() {
		err = rows.Scan(&total)
	}
	if err := errors.Join(err, rows.Close(), rows.Err()); err != nil || total == 0 || q.Offset >= total {
		return nil, total, err
	}
	filter := " INDEXED BY jobs_by_id WHERE job_id IN (SELECT job_id FROM job_tags WHERE " + cond + ")"
	if total*20 >= s.names.count() {
		// CROSS JOIN keeps jobs the outer loop, in the order's index; a
		// job has a key once, so the join repeats no job.
		filter = " CROSS JOIN job_tags t INDEXED BY job_tags_by_job ON t.job_id = jobs.job_id AND t." +
			strings.Replace(cond, "tag_value", "t.tag_value", 1)
	}
	page, _, err := s.page(ctx, col, dir, filter, "", append(args, limit, q.Offset))
	return page, total, err
}

func (s *Store) count(ctx context.Context, filter string, args []any) (int, error) {
	var total int
	countRows, err := s.query(ctx, `SELECT count(*) FROM jobs`+filter, args...)
	if err != nil {
		return 0, err
	}
	for countRows.Next() {
		err = countRows.Scan(&total)
	}
	return total, errors.Join(err, countRows.Close(), countRows.Err())
}

// page reads one page of jobs; with the window count, the total too. The
// inner query walks an index of (col, job_id) and yields the page's
// ids; the join reads only their rows. A subquery with LIMIT is not
// flattened into a join, so SQLite keeps this shape.
func (s *Store) page(ctx context.Context, col, dir, filter, window string, args []any) ([]*jobs.Job, int, error) {
	n := "0"
	if window != "" {
		n = "p.n"
	}
	query := fmt.Sprintf(`SELECT %s, %s FROM (SELECT jobs.job_id, jobs.%s AS k%s AS n FROM jobs%s ORDER BY jobs.%s %s, jobs.job_id %s LIMIT ? OFFSET ?) p
		JOIN jobs j ON j.job_id = p.job_id ORDER BY p.k %s, p.job_id %s`, jobColumns, n, col, window, filter, col, dir, dir, dir, dir)
	if window == "" {
		query = strings.Replace(query, " AS n FROM", " FROM", 1)
	}
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*jobs.Job
	total := 0
	for rows.Next() {
		j, err := scanJob(rows, &s.docs, &total)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, j)
	}
	return out, total, rows.Err()
}

func placeholders(n int) string {
	return "?" + strings.Repeat(", ?", n-1)
}

// CountByStatus counts jobs per status from the status index (only the
// entries of the statuses asked for, when some are).
func (s *Store) CountByStatus(ctx context.Context, only ...jobs.Status) (map[jobs.Status]int, error) {
	where := ""
	var args []any
	if len(only) > 0 {
		where = " WHERE status IN (" + placeholders(len(only)) + ")"
		for _, st := range only {
			args = append(args, int(st))
		}
	}
	rows, err := s.query(ctx, `SELECT status, count(*) FROM jobs`+where+` GROUP BY status`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[jobs.Status]int{}
	for rows.Next() {
		var st, n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[jobs.Status(st)] = n
	}
	return out, rows.Err()
}

// WritingInto finds unfinished jobs through the job_targets index.
func (s *Store) WritingInto(ctx context.Context, targets, databases []string) ([]*jobs.Job, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	var args []any
	for _, t := range targets {
		args = append(args, t)
	}
	cond := "t.target IN (" + placeholders(len(targets)) + ")"
	if len(databases) > 0 {
		cond += " AND t.db_name IN ('', " + placeholders(len(databases)) + ")"
		for _, d := range databases {
			args = append(args, d)
		}
	}
	args = append(args, int(jobs.StatusSuccess), int(jobs.StatusFailed))
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs j
		WHERE j.job_id IN (SELECT t.job_id FROM job_targets t WHERE `+cond+`) AND j.status NOT IN (?, ?)
		ORDER BY j.create_time, j.job_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*jobs.Job
	for rows.Next() {
		j, err := scanJob(rows, &s.docs)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}
