// Package store keeps migration jobs in an embedded SQLite database
// (modernc.org/sqlite, no cgo), one file in the data directory. It
// implements jobs.Store; it never decides anything about a job.
//
// What is persisted (schema version 2, PRAGMA user_version; schema.go):
//   - `jobs`: one row per job: the job as a JSON document (`doc`), its
//     passwords sealed with AES-GCM (internal/secret) in `secrets` (never in
//     the document), the columns DescribeMigrateJobs filters and orders by
//     (each with an index ending in job_id), the target named for the
//     duplicate check, and the progress and lag columns a running migration
//     updates (they override the document's Detail values when read).
//   - `job_tags`: a job's tags (key, value), indexed by key and value.
//   - `job_targets`: per job, its target and each database it writes into
//     ("" for the whole instance), indexed by (target, database).
//
// Who writes: the job service of one process. A job's row, its tags and its
// targets are written in one transaction (CreateJob, UpdateJob); DeleteJob
// removes all three; SaveProgress writes four columns of one row, and the
// copy's summary into its document (Detail.Copy).
//
// In memory, for the one process that owns the file: every job's name
// (JobName matches a part of a name, which no index answers; names.go),
// the documents of listed jobs already decoded (cache.go), and the prepared
// read statements.
//
// Connections: writes go through one connection and take the write lock at
// BEGIN (BEGIN IMMEDIATE), so our own writers queue in Go and never meet
// SQLITE_BUSY; reads use a pool of read-only connections, which in WAL mode
// see the last commit and never wait for the writer. busy_timeout covers
// what is left (a checkpoint, another process on the same file).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
)

// Store is the SQLite job store.
type Store struct {
	w   *sql.DB // the one writer connection
	r   *sql.DB // read-only connections
	box *secret.Box

	wmu    sync.Mutex // held by CreateJob, UpdateJob and DeleteJob
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	docs   decoded
	names  names
}

var _ jobs.Store = (*Store)(nil)

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and brings its
// schema to the current version.
func Open(path string, box *secret.Box) (*Store, error) {
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open job store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(context.Background(), w); err != nil {
		w.Close()
		return nil, fmt.Errorf("job store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open job store %s: %w", path, err)
	}
	n := max(2, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &Store{w: w, r: r, box: box, stmts: map[string]*sql.Stmt{}}
	if err := s.names.load(context.Background(), w); err != nil {
		s.Close()
		return nil, fmt.Errorf("job store %s: read job names: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[string]*sql.Stmt{}
	s.stmtMu.Unlock()
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping checks that the database answers, for readiness.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.r.PingContext(ctx); err != nil {
		return errors.Join(errors.New("job store unavailable"), err)
	}
	return nil
}
