package mysql

import (
	"sync/atomic"

	"github.com/opendts/opendts/internal/engine"
)

// tableCopy is one table's share of the copy, for its progress reports.
type tableCopy struct {
	ref engine.TableRef
	// estRows sums the estimates of the table's chunks; chunks counts
	// them.
	estRows int64
	chunks  int64
	// rows and committed count what is committed on the target, in this
	// run and before it.
	rows, committed atomic.Int64
}

// planTables groups the plan's chunks by table, in plan order, and counts
// what earlier runs committed (done).
func planTables(chunks []chunk, done map[int][2]int64) (map[string]*tableCopy, []*tableCopy) {
	byID := map[string]*tableCopy{}
	var order []*tableCopy
	for _, ch := range chunks {
		id := tableID(ch.DB, ch.Table)
		t := byID[id]
		if t == nil {
			t = &tableCopy{ref: engine.TableRef{Database: ch.DB, Table: ch.Table}}
			byID[id] = t
			order = append(order, t)
		}
		t.estRows += ch.EstRows
		t.chunks++
		if d, ok := done[ch.ID]; ok {
			t.rows.Add(d[0])
			t.committed.Add(1)
		}
	}
	return byID, order
}

// progress is the table's report after rows more rows and chunks more
// chunks are committed.
func (t *tableCopy) progress(rows, chunks int64) engine.TableProgress {
	r := t.rows.Add(rows)
	n := t.committed.Add(chunks)
	return engine.TableProgress{Table: t.ref, RowsDone: r, RowsTotal: t.estRows, Done: n >= t.chunks}
}
