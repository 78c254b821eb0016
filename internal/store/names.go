package store

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// maxNameMatches is the most job ids a JobName filter hands SQLite as a
// list; a name matching more is filtered by SQLite's own scan of the names.
const maxNameMatches = 1000

// names keeps every job's name in memory, for JobName (a part of a name),
// which no SQLite index answers: a scan of these strings costs a fraction
// of SQLite scanning its index of them. The SQLite store is the only writer
// of its file, and updates this after each commit, before the write
// returns; a query still checks each match against the stored name.
type names struct {
	mu  sync.RWMutex
	ids []string
	nms []string
	at  map[string]int // job id -> index in ids and nms
}

func (n *names) load(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT job_id, job_name FROM jobs`)
	if err != nil {
		return err
	}
	defer rows.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ids, n.nms, n.at = nil, nil, map[string]int{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		n.at[id] = len(n.ids)
		n.ids, n.nms = append(n.ids, id), append(n.nms, name)
	}
	return rows.Err()
}

func (n *names) set(id, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if i, ok := n.at[id]; ok {
		n.nms[i] = name
		return
	}
	n.at[id] = len(n.ids)
	n.ids, n.nms = append(n.ids, id), append(n.nms, name)
}

func (n *names) remove(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, ok := n.at[id]
	if !ok {
		return
	}
	last := len(n.ids) - 1
	n.ids[i], n.nms[i] = n.ids[last], n.nms[last]
	n.at[n.ids[i]] = i
	n.ids, n.nms = n.ids[:last], n.nms[:last]
	delete(n.at, id)
}

// matching returns the ids of the jobs whose name contains part; ok is
// false when more than maxNameMatches do.
func (n *names) matching(part string) (ids []string, ok bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for i, name := range n.nms {
		if strings.Contains(name, part) {
			if len(ids) == maxNameMatches {
				return nil, false
			}
			ids = append(ids, n.ids[i])
		}
	}
	return ids, true
}

// count is the number of jobs stored.
func (n *names) count() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.ids)
}
