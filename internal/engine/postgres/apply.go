package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opendts/opendts/internal/engine"
)

// relInfo is a source table as pgoutput's Relation message describes it.
type relInfo struct {
	schema, name string
	cols         []string
	// keyCols are the indexes of the replica identity's columns; full is
	// REPLICA IDENTITY FULL (the whole old row identifies it).
	keyCols []int
	full    bool
	// ddlLog is opendts's own log of the source's DDL (ddl_capture.go).
	ddlLog bool
}

func (r *relInfo) key() string      { return r.schema + "." + r.name }
func (r *relInfo) String() string   { return r.key() }
func (r *relInfo) quoted() string   { return quoteQualified(r.schema, r.name) }
func (r *relInfo) hasKey() bool     { return len(r.keyCols) > 0 && !r.full }
func (r *relInfo) col(i int) string { return quoteIdent(r.cols[i]) }

// relation records a table's description, and refuses a table whose
// columns no longer match the target's: logical decoding does not carry
// DDL, and a changed table cannot be applied column by column.
func (a *applier) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	r := &relInfo{schema: m.Namespace, name: m.RelationName, full: m.ReplicaIdentity == 'f'}
	for i, c := range m.Columns {
		r.cols = append(r.cols, c.Name)
		if c.Flags&1 != 0 {
			r.keyCols = append(r.keyCols, i)
		}
	}
	if r.schema == markSchema {
		// Only the DDL log is published from opendts's schema; it has no
		// table on the target.
		r.ddlLog = true
		a.rels[m.RelationID] = r
		return nil
	}
	rows, err := a.dst.Query(ctx, `SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, r.quoted())
	if err != nil {
		return engine.Permanent(fmt.Errorf("target %s: table %s, which the source changes, is missing: %w", a.s.db, r, err))
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target %s: columns of %s: %w", a.s.db, r, err)
	}
	if !slices.Equal(cols, r.cols) {
		return engine.Permanent(fmt.Errorf("source %s: the columns of %s changed (now %s; the target has %s): opendts does not replicate DDL of PostgreSQL yet; "+
			"apply the same change to the target, then start the job again from the beginning", a.s.db, r, strings.Join(r.cols, ", "), strings.Join(cols, ", ")))
	}
	a.rels[m.RelationID] = r
	return nil
}

// complete reports whether a tuple carries every column (no unchanged
// TOASTed value left out).
func complete(t *pglogrepl.TupleData) bool {
	for _, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			return false
		}
	}
	return true
}

// literal is a column's value as SQL text: a string literal the column's
// input function reads (the target casts it), or NULL.
func literal(c *pglogrepl.TupleDataColumn) string {
	if c.DataType == pglogrepl.TupleDataTypeNull {
		return "NULL"
	}
	return quoteLiteral(string(c.Data))
}

func (a *applier) insert(ctx context.Context, r *relInfo, t *pglogrepl.TupleData, idem bool) error {
	var cols, vals []string
	for i, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		cols = append(cols, r.col(i))
		vals = append(vals, literal(c))
	}
	q := "INSERT INTO " + r.quoted() + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"
	if idem && r.hasKey() {
		var keys, sets []string
		for _, k := range r.keyCols {
			keys = append(keys, r.col(k))
		}
		for _, c := range cols {
			sets = append(sets, c+" = excluded."+c)
		}
		q += " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ")
	}
	return a.queue(ctx, q, nil)
}

// match is the WHERE clause that finds the row old describes: its key, or
// for REPLICA IDENTITY FULL exactly one row equal to it (by text form, so
// that types without an equality operator compare too).
func (a *applier) match(r *relInfo, old *pglogrepl.TupleData) string {
	var conds []string
	add := func(i int, c *pglogrepl.TupleDataColumn, asText bool) {
		col := r.col(i)
		if asText {
			col += "::text"
		}
		if c.DataType == pglogrepl.TupleDataTypeNull {
			conds = append(conds, col+" IS NULL")
			return
		}
		conds = append(conds, col+" = "+literal(c))
	}
	if r.hasKey() {
		for _, k := range r.keyCols {
			add(k, old.Columns[k], false)
		}
		return strings.Join(conds, " AND ")
	}
	for i, c := range old.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		add(i, c, true)
	}
	return "ctid = (SELECT ctid FROM " + r.quoted() + " WHERE " + strings.Join(conds, " AND ") + " LIMIT 1)"
}

// update applies an UPDATE. Before a table's later-snapshot boundary
// (idem) the row may already be in its final place, or not be where the
// change found it (a key change across two chunks copied from different
// snapshots): the change is then applied as the state it leaves, the old
// key gone and the new row written whole.
func (a *applier) update(ctx context.Context, r *relInfo, m *pglogrepl.UpdateMessage, idem bool) error {
	if idem && r.hasKey() && complete(m.NewTuple) {
		if m.OldTuple != nil {
			if err := a.queue(ctx, "DELETE FROM "+r.quoted()+" WHERE "+a.match(r, m.OldTuple), nil); err != nil {
				return err
			}
		}
		return a.insert(ctx, r, m.NewTuple, true)
	}
	old := m.OldTuple
	if old == nil {
		if !r.hasKey() {
			return engine.Permanent(fmt.Errorf("source %s: an UPDATE of %s came without the old row: the table needs a primary key or REPLICA IDENTITY FULL", a.s.db, r))
		}
		old = m.NewTuple // the key did not change
	}
	var sets []string
	for i, c := range m.NewTuple.Columns {
		// An unchanged TOASTed value is not sent: the target keeps its own.
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		sets = append(sets, r.col(i)+" = "+literal(c))
	}
	return a.queue(ctx, "UPDATE "+r.quoted()+" SET "+strings.Join(sets, ", ")+" WHERE "+a.match(r, old), a.mustChange(r, "an UPDATE of", idem))
}

func (a *applier) delete(ctx context.Context, r *relInfo, m *pglogrepl.DeleteMessage, idem bool) error {
	if m.OldTuple == nil {
		return engine.Permanent(fmt.Errorf("source %s: a DELETE from %s came without the old row: the table needs a primary key or REPLICA IDENTITY FULL", a.s.db, r))
	}
	return a.queue(ctx, "DELETE FROM "+r.quoted()+" WHERE "+a.match(r, m.OldTuple), a.mustChange(r, "a DELETE from", idem))
}

// mustChange is the check of an UPDATE or DELETE outside the idempotent
// window: it must find its row, or the target has drifted from the source.
func (a *applier) mustChange(r *relInfo, what string, idem bool) func(pgconn.CommandTag) error {
	if idem {
		return nil
	}
	return func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return engine.Permanent(fmt.Errorf("target %s: %s %s found no row: the target differs from the source (was it written to?)", a.s.db, what, r))
		}
		return nil
	}
}

// batch collects row changes for one round trip to the target: one query
// string of many statements, whose results come back one per statement.
// Changes are sent in order, within the open group's transaction.
type batch struct {
	sql    strings.Builder
	checks []func(pgconn.CommandTag) error
}

const (
	batchStatements = 500
	batchBytes      = 1 << 20
)

// queue adds a statement, with the check of its result (nil: none), and
// sends the batch when it is full.
func (a *applier) queue(ctx context.Context, stmt string, check func(pgconn.CommandTag) error) error {
	b := &a.batch
	b.sql.WriteString(stmt)
	b.sql.WriteString(";\n")
	b.checks = append(b.checks, check)
	if len(b.checks) >= batchStatements || b.sql.Len() >= batchBytes {
		return a.flush(ctx)
	}
	return nil
}

// flush sends the queued statements. A statement the target refuses
// stops the job, naming it; a connection lost is retried by the driver.
func (a *applier) flush(ctx context.Context) error {
	b := &a.batch
	if len(b.checks) == 0 {
		return nil
	}
	sql, checks := b.sql.String(), b.checks
	b.sql.Reset()
	b.checks = nil
	results, err := a.dst.PgConn().Exec(ctx, sql).ReadAll()
	failedAt := len(results)
	for i, r := range results {
		if r.Err != nil {
			err, failedAt = r.Err, i
			break
		}
	}
	if err != nil {
		if transient(err) || ctx.Err() != nil {
			return fmt.Errorf("target %s: apply changes: %w", a.s.db, err)
		}
		failed := statementAt(sql, failedAt)
		return engine.Permanent(fmt.Errorf("target %s: the target refused a change (%.300s): %w", a.s.db, failed, err))
	}
	for i, r := range results {
		if i < len(checks) && checks[i] != nil {
			if err := checks[i](r.CommandTag); err != nil {
				return err
			}
		}
	}
	return nil
}

// statementAt is the i-th statement of a batch (statements end with ";\n"
// and a literal's newlines never follow a semicolon the batch added).
func statementAt(sql string, i int) string {
	parts := splitStatements(sql)
	if i < len(parts) {
		return parts[i]
	}
	return ""
}
