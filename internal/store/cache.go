package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/opendts/opendts/internal/jobs"
)

// maxStatements caps the prepared read statements kept: their shapes are
// few (filters x orders), but a TagFilter's number of values is the
// client's choice.
const maxStatements = 256

// query runs a read through a prepared statement of the read pool, kept
// per query text: SQLite's parser would otherwise be a good part of a
// short query's cost.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s.stmtMu.Lock()
	st := s.stmts[query]
	s.stmtMu.Unlock()
	if st == nil {
		var err error
		if st, err = s.r.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		s.stmtMu.Lock()
		if prev := s.stmts[query]; prev != nil {
			st.Close()
			st = prev
		} else if len(s.stmts) < maxStatements {
			s.stmts[query] = st
		} else {
			defer st.Close()
			rows, err := st.QueryContext(ctx, args...)
			s.stmtMu.Unlock()
			return rows, err
		}
		s.stmtMu.Unlock()
	}
	return st.QueryContext(ctx, args...)
}

// maxDecoded caps the decoded documents kept.
const maxDecoded = 20000

// decoded keeps listed jobs decoded, by job id, with the document they
// were decoded from: a document read again byte for byte is not decoded
// again. The jobs it hands out share their slices with the cache, so
// listed jobs are read-only (jobs.Store says so); GetJob never uses it.
type decoded struct {
	mu   sync.Mutex
	jobs map[string]decodedJob
}

type decodedJob struct {
	doc string
	job *jobs.Job
}

// job returns the job of doc, decoding it unless the cache has it.
func (d *decoded) job(id string, doc []byte) (*jobs.Job, error) {
	d.mu.Lock()
	c, ok := d.jobs[id]
	d.mu.Unlock()
	if ok && c.doc == string(doc) {
		j := *c.job
		return &j, nil
	}
	j := &jobs.Job{}
	if err := json.Unmarshal(doc, j); err != nil {
		return nil, fmt.Errorf("decode stored job: %w", err)
	}
	cached := *j
	d.mu.Lock()
	if d.jobs == nil {
		d.jobs = map[string]decodedJob{}
	}
	if len(d.jobs) >= maxDecoded {
		for k := range d.jobs { // drop one at random
			delete(d.jobs, k)
			break
		}
	}
	d.jobs[id] = decodedJob{doc: string(doc), job: &cached}
	d.mu.Unlock()
	return j, nil
}
