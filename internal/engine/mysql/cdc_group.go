package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gmysql "github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// Changes are applied in groups: many small source transactions become one
// target transaction, which ends on a source transaction boundary and
// saves the position reached in the same transaction. So a group is atomic
// and applied exactly once, whatever the table, and a crash replays
// nothing twice.
//
// Within a group the changes to a table whose rows are independent (a
// key, no other unique key, no foreign key) are folded into their net
// effect per key: the last image of each row, or its deletion. They are
// then written as one DELETE ... WHERE key IN (...) and one multi-row
// REPLACE per table (LOAD DATA ... REPLACE from 1,000 rows, cdc_load.go):
// a few statements for thousands of row events, which the target parses
// and applies far faster than a statement per row. Deletes go first, so a key deleted and another
// spelling of it (by collation) inserted end right. Other tables keep a
// statement per row change, in binlog order.

// opKind is what a row event did to one row.
type opKind uint8

const (
	opInsert opKind = iota
	opUpdate
	opDelete
)

// rowChange is one row's change, decoded from a rows event.
type rowChange struct {
	t             *cdcTable
	op            opKind
	before, after []any // stored columns' values; before for update/delete, after for insert/update
	// noFKChecks: the source made the change with foreign_key_checks=0,
	// so the target must too (no cascade, no refusal).
	noFKChecks bool
}

// netRow is a row's last state in a group: its image, or deleted (vals is
// then the image it was deleted with, for its key).
type netRow struct {
	vals    []any
	deleted bool
}

// tableNet is the net effect of a group on one foldable table.
type tableNet struct {
	t     *cdcTable
	index map[string]int // key bytes -> position in rows
	rows  []netRow
}

type group struct {
	// serial are the statements for tables that need them in order;
	// exact[i] says serial[i] must change exactly one row, or the target
	// has drifted from the source.
	serial []string
	exact  []bool
	exacts int
	nets   map[*cdcTable]*tableNet
	order  []*tableNet
	// changes counts row changes (before folding), bytes estimates the
	// SQL the group will send.
	changes int
	rows    int64
	bytes   int
	// end is the position after the group's last transaction; hasEnd says
	// it was set (a group may move the position without changes).
	end     position
	hasEnd  bool
	started time.Time
	// since is the source time of the group's first transaction.
	since int64
	// open: the group ends inside a source transaction too big for one
	// group (see spill); it is applied without the position and without
	// a commit, and the group after it continues the target transaction.
	open bool
	// keyBuf and afterKey are reused to render keys.
	keyBuf, afterKey []byte
}

func newGroup() *group {
	return &group{nets: map[*cdcTable]*tableNet{}}
}

func (g *group) empty() bool { return g.changes == 0 }

// setEnd moves the group's end to a transaction boundary.
func (g *group) setEnd(p position) {
	g.end, g.hasEnd = p, true
}

// add folds one source transaction's changes into the group.
func (g *group) add(txn []rowChange, rows int64) {
	if len(txn) > 0 && g.changes == 0 {
		g.started = time.Now()
	}
	g.rows += rows
	for _, c := range txn {
		g.changes++
		t := c.t
		if t.serial() {
			s, exact := serialSQL(c)
			if c.noFKChecks {
				g.serial = append(g.serial, "SET SESSION foreign_key_checks = 0")
				g.exact = append(g.exact, false)
			}
			g.serial = append(g.serial, s)
			g.exact = append(g.exact, exact)
			if c.noFKChecks {
				g.serial = append(g.serial, "SET SESSION foreign_key_checks = 1")
				g.exact = append(g.exact, false)
			}
			if exact {
				g.exacts++
			}
			g.bytes += len(s)
			continue
		}
		n := g.nets[t]
		if n == nil {
			n = &tableNet{t: t, index: map[string]int{}}
			g.nets[t] = n
			g.order = append(g.order, n)
		}
		switch c.op {
		case opInsert:
			g.keyBuf = t.appendKey(g.keyBuf[:0], c.after)
			g.put(n, g.keyBuf, c.after, false)
		case opDelete:
			g.keyBuf = t.appendKey(g.keyBuf[:0], c.before)
			g.put(n, g.keyBuf, c.before, true)
		case opUpdate:
			// A key change deletes the old key's row.
			g.keyBuf = t.appendKey(g.keyBuf[:0], c.before)
			g.afterKey = t.appendKey(g.afterKey[:0], c.after)
			if !bytes.Equal(g.keyBuf, g.afterKey) {
				g.put(n, g.keyBuf, c.before, true)
			}
			g.put(n, g.afterKey, c.after, false)
		}
	}
}

// put records the latest state of the row with key.
func (g *group) put(n *tableNet, key []byte, vals []any, deleted bool) {
	if i, ok := n.index[string(key)]; ok {
		n.rows[i] = netRow{vals: vals, deleted: deleted}
		return
	}
	n.index[string(key)] = len(n.rows)
	n.rows = append(n.rows, netRow{vals: vals, deleted: deleted})
	// About what the row will take in a statement.
	g.bytes += 16 * len(vals)
	for _, v := range vals {
		switch x := v.(type) {
		case string:
			g.bytes += len(x)
		case []byte:
			g.bytes += len(x)
		}
	}
}

// serialSQL is the statement for one row change of a table on the serial
// path, and whether it must find exactly one row: deletes and updates do
// (by key, or by all values without one). Groups are applied exactly
// once, so a miss means the target's rows are not the source's; a plain
// INSERT that meets its key already there fails for the same reason.
//
// A table on a non-transactional engine keeps what a failed group wrote,
// so the group's replay must converge: its inserts are upserts and its
// changes are not checked.
func serialSQL(c rowChange) (string, bool) {
	var stmt string
	exact := !c.t.nonTransactional
	switch c.op {
	case opInsert:
		stmt, exact = c.t.insertRowsSQL([][]any{c.after}, c.t.nonTransactional && len(c.t.key) > 0), false
	case opDelete:
		stmt = c.t.deleteSQL(c.before)
	default:
		stmt = c.t.updateSQL(c.before, c.after)
	}
	return stmt, exact
}

// size estimates the memory a decoded change holds, to bound what a
// source transaction keeps before it is spilled.
func (c rowChange) size() int {
	n := 64
	for _, vals := range [2][]any{c.before, c.after} {
		for _, v := range vals {
			n += 16
			switch x := v.(type) {
			case string:
				n += len(x)
			case []byte:
				n += len(x)
			}
		}
	}
	return n
}

// appendKey appends the bytes that identify a row of a keyed table.
func (t *cdcTable) appendKey(buf []byte, vals []any) []byte {
	for _, i := range t.keyStored {
		buf = literal(buf, t.storedCol(i), vals[i])
		buf = append(buf, 0)
	}
	return buf
}

// statements renders the group as SQL, each statement at most about
// maxStmt bytes unless one row is bigger: the serial statements in order,
// then per folded table its deletes and its upserts, but for the tables
// in loaded, whose upserts go by LOAD DATA after the statements (folded
// tables are independent of each other, so only a table's own deletes
// must come before its rows).
func (g *group) statements(maxStmt int, loaded map[*tableNet]bool) []string {
	out := append([]string(nil), g.serial...)
	for _, n := range g.order {
		out = n.deletes(out, maxStmt)
		if !loaded[n] {
			out = n.upserts(out, maxStmt)
		}
	}
	return out
}

func (n *tableNet) deletes(out []string, maxStmt int) []string {
	t := n.t
	prefix := "DELETE FROM " + t.String() + " WHERE "
	single := len(t.keyStored) == 1
	if single {
		prefix += quoteIdent(t.storedCol(t.keyStored[0]).name) + " IN ("
	}
	var buf []byte
	for _, r := range n.rows {
		if !r.deleted {
			continue
		}
		if len(buf) == 0 {
			buf = append(buf, prefix...)
		} else if single {
			buf = append(buf, ',')
		} else {
			buf = append(buf, " OR "...)
		}
		if single {
			buf = keyLiteral(buf, t.storedCol(t.keyStored[0]), r.vals[t.keyStored[0]])
		} else {
			buf = append(buf, '(')
			buf = t.where(buf, r.vals)
			buf = append(buf, ')')
		}
		if len(buf) >= maxStmt {
			if single {
				buf = append(buf, ')')
			}
			out = append(out, string(buf))
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if single {
			buf = append(buf, ')')
		}
		out = append(out, string(buf))
	}
	return out
}

func (n *tableNet) upserts(out []string, maxStmt int) []string {
	t := n.t
	var batch [][]any
	size := 0
	for _, r := range n.rows {
		if r.deleted {
			continue
		}
		batch = append(batch, r.vals)
		for _, v := range r.vals {
			size += 16
			switch x := v.(type) {
			case string:
				size += 2 * len(x)
			case []byte:
				size += 2 * len(x)
			}
		}
		if size >= maxStmt {
			out = append(out, t.replaceSQL(batch))
			batch, size = batch[:0], 0
		}
	}
	if len(batch) > 0 {
		out = append(out, t.replaceSQL(batch))
	}
	return out
}

// keyLiteral writes a key value for a comparison: FLOAT widens to DOUBLE
// to compare, so its value must too.
func keyLiteral(buf []byte, c cdcColumn, v any) []byte {
	if f, ok := v.(float32); ok {
		return strconv.AppendFloat(buf, float64(f), 'g', -1, 64)
	}
	return literal(buf, c, v)
}

// applyGroup writes a group in one target transaction with the position
// after it. A group that is open (part of a large source transaction) is
// written into the target transaction that stays open on inc.txConn; the
// group that closes it adds the position and commits.
func (inc *incremental) applyGroup(ctx context.Context, g *group) error {
	began := time.Now()
	var loads []*tableNet
	loaded := map[*tableNet]bool{}
	if inc.loadData {
		// Smaller batches are cheaper as statements in the group's one
		// round trip.
		for _, n := range g.order {
			if n.t.loadFits() && n.upsertRows() >= inc.m.e.cfg.LoadDataMinRows {
				loads = append(loads, n)
				loaded[n] = true
			}
		}
	}
	stmts := g.statements(inc.maxStmt, loaded)
	// The transaction, its statements and the position go in one round
	// trip when they fit in maxStmt: fewer waits on a busy machine. A group
	// with statements whose effect is checked commits after the check.
	lead := 0
	conn := inc.txConn
	if conn == nil {
		var err error
		if conn, err = inc.apply.Conn(ctx); err != nil {
			return err
		}
		stmts = append([]string{"START TRANSACTION"}, stmts...)
		lead = 1
	}
	inc.txConn = nil
	// The position and the commit end the group, after the loads if any.
	var tail []string
	if !g.open {
		tail = append(tail, inc.savePositionSQL(g.end))
		if g.exacts == 0 {
			tail = append(tail, "COMMIT")
		}
	}
	if len(loads) == 0 {
		stmts, tail = append(stmts, tail...), nil
	}
	// The serial statements come first, after START TRANSACTION.
	exact := func(j int) bool { return j >= lead && j < lead+len(g.exact) && g.exact[j-lead] }
	fail := func(err error) error {
		// The server stopped at the failing statement, inside the
		// transaction: end it, and never reuse the connection.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = conn.ExecContext(rctx, "ROLLBACK")
		cancel()
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
		if err := inc.m.cp.fence.explain(ctx, fmt.Sprintf("commit of the changes up to %s:%d", g.end.File, g.end.Pos), err); errors.Is(err, engine.ErrFenced) {
			return engine.Permanent(err)
		}
		var drift *driftError
		if errors.As(err, &drift) || (!retryable(err) && ctx.Err() == nil) {
			return &applyError{fmt.Errorf("apply changes up to %s:%d on the target: %w", g.end.File, g.end.Pos, err)}
		}
		return err
	}
	if len(stmts) == 0 {
		stmts = []string{"DO 0"}
	}
	// Statements go in round trips of about maxStmt bytes; one larger than
	// that (a row with a large value) goes alone, as it is, so its text is
	// not copied into a batch as well.
	var batch strings.Builder
	first := 0
	run := func(last int, query string) error {
		affected, err := execAll(ctx, conn, query)
		if err != nil {
			return err
		}
		for k, n := range affected {
			if j := first + k; j <= last && exact(j) && n != 1 {
				return &driftError{stmt: stmts[j], rows: n}
			}
		}
		batch.Reset()
		first = last + 1
		return nil
	}
	for i, s := range stmts {
		if len(s) >= inc.maxStmt {
			if batch.Len() > 0 {
				if err := run(i-1, batch.String()); err != nil {
					return fail(err)
				}
			}
			if err := run(i, s); err != nil {
				return fail(err)
			}
			continue
		}
		if batch.Len() > 0 {
			batch.WriteString(";\n")
		}
		batch.WriteString(s)
		if batch.Len() < inc.maxStmt && i < len(stmts)-1 {
			continue
		}
		if err := run(i, batch.String()); err != nil {
			return fail(err)
		}
	}
	for _, n := range loads {
		if err := n.loadRows(ctx, conn, inc.m.spec.JobID); err != nil {
			return fail(err)
		}
	}
	if len(tail) > 0 {
		if _, err := execAll(ctx, conn, strings.Join(tail, ";\n")); err != nil {
			return fail(err)
		}
	}
	if g.open {
		inc.txConn = conn
		inc.m.e.cfg.Counters.AppliedRows(inc.m.spec.JobID, g.rows)
		inc.m.e.cfg.Logger.Debug("piece of a large transaction applied", "job_id", inc.m.spec.JobID, "changes", g.changes,
			"statements", len(stmts), "applied", time.Since(began).Round(time.Millisecond))
		return nil
	}
	defer conn.Close()
	if g.exacts > 0 {
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return fail(err)
		}
	}
	inc.setApplied(g.end)
	inc.inflightSince.Store(0)
	inc.saved(g.end)
	inc.m.e.cfg.Counters.AppliedRows(inc.m.spec.JobID, g.rows)
	inc.m.e.cfg.Logger.Debug("group applied", "job_id", inc.m.spec.JobID, "changes", g.changes,
		"statements", len(stmts), "bytes", g.bytes, "filled", began.Sub(g.started).Round(time.Millisecond),
		"applied", time.Since(began).Round(time.Millisecond), "file", g.end.File, "pos", g.end.Pos)
	return nil
}

// driftError is a change that should have found exactly one row on the
// target and did not.
type driftError struct {
	stmt string
	rows int64
}

func (e *driftError) Error() string {
	return fmt.Sprintf("a change the source made to one row matched %d rows on the target, which therefore no longer holds the source's rows (was it written to during the migration?): %.300s", e.rows, e.stmt)
}

// execAll runs statements in one round trip and returns the rows each
// changed (found, for updates: the pool sets CLIENT_FOUND_ROWS).
func execAll(ctx context.Context, conn *sql.Conn, q string) ([]int64, error) {
	var affected []int64
	err := conn.Raw(func(dc any) error {
		ex, ok := dc.(driver.ExecerContext)
		if !ok {
			return errors.New("the MySQL driver cannot execute statements directly")
		}
		res, err := ex.ExecContext(ctx, q, nil)
		if err != nil {
			return err
		}
		if r, ok := res.(gmysql.Result); ok {
			affected = r.AllRowsAffected()
		}
		return nil
	})
	return affected, err
}

// savePositionSQL is savePositionSQL with its values in the text, to go in
// a batch; in cluster mode the file name comes from a locking read of the
// fence (fence.go), so the group's one round trip also proves its epoch.
func (inc *incremental) savePositionSQL(p position) string {
	buf := []byte("INSERT INTO " + binlogPositionsTable + " (job_id, file, pos) VALUES ('")
	buf = appendEscaped(buf, []byte(inc.m.spec.JobID))
	buf = append(buf, "', "...)
	buf = inc.m.cp.fence.appendFileValue(buf, p.File)
	buf = append(buf, ", "...)
	buf = strconv.AppendUint(buf, p.Pos, 10)
	buf = append(buf, ") ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos)"...)
	return string(buf)
}
