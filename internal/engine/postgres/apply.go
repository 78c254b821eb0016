package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

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

// value is a column's text value, or nil for NULL.
func value(c *pglogrepl.TupleDataColumn) any {
	if c.DataType == pglogrepl.TupleDataTypeNull {
		return nil
	}
	return string(c.Data)
}

func (a *applier) insert(ctx context.Context, r *relInfo, t *pglogrepl.TupleData, idem bool) error {
	var cols, params []string
	var args []any
	for i, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		cols = append(cols, r.col(i))
		args = append(args, value(c))
		params = append(params, "$"+strconv.Itoa(len(args)))
	}
	q := "INSERT INTO " + r.quoted() + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
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
	if _, err := a.dst.Exec(ctx, q, args...); err != nil {
		return engine.Permanent(fmt.Errorf("target %s: insert into %s: %w", a.s.db, r, err))
	}
	return nil
}

// match is the WHERE clause that finds the row old describes: its key, or
// for REPLICA IDENTITY FULL exactly one row equal to it (by text form, so
// that types without an equality operator compare too).
func (a *applier) match(r *relInfo, old *pglogrepl.TupleData, args []any) (string, []any) {
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
		args = append(args, value(c))
		conds = append(conds, col+" = $"+strconv.Itoa(len(args)))
	}
	if r.hasKey() {
		for _, k := range r.keyCols {
			add(k, old.Columns[k], false)
		}
		return strings.Join(conds, " AND "), args
	}
	for i, c := range old.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		add(i, c, true)
	}
	return "ctid = (SELECT ctid FROM " + r.quoted() + " WHERE " + strings.Join(conds, " AND ") + " LIMIT 1)", args
}

// update applies an UPDATE. Before a table's later-snapshot boundary
// (idem) the row may already be in its final place, or not be where the
// change found it (a key change across two chunks copied from different
// snapshots): the change is then applied as the state it leaves, the old
// key gone and the new row written whole.
func (a *applier) update(ctx context.Context, r *relInfo, m *pglogrepl.UpdateMessage, idem bool) error {
	if idem && r.hasKey() && complete(m.NewTuple) {
		if m.OldTuple != nil {
			where, args := a.match(r, m.OldTuple, nil)
			if _, err := a.dst.Exec(ctx, "DELETE FROM "+r.quoted()+" WHERE "+where, args...); err != nil {
				return engine.Permanent(fmt.Errorf("target %s: update %s: %w", a.s.db, r, err))
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
	var args []any
	for i, c := range m.NewTuple.Columns {
		// An unchanged TOASTed value is not sent: the target keeps its own.
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		args = append(args, value(c))
		sets = append(sets, r.col(i)+" = $"+strconv.Itoa(len(args)))
	}
	where, args := a.match(r, old, args)
	tag, err := a.dst.Exec(ctx, "UPDATE "+r.quoted()+" SET "+strings.Join(sets, ", ")+" WHERE "+where, args...)
	if err != nil {
		return engine.Permanent(fmt.Errorf("target %s: update %s: %w", a.s.db, r, err))
	}
	if tag.RowsAffected() == 0 && !idem {
		return engine.Permanent(fmt.Errorf("target %s: an UPDATE of %s found no row to change: the target differs from the source (was it written to?)", a.s.db, r))
	}
	return nil
}

func (a *applier) delete(ctx context.Context, r *relInfo, m *pglogrepl.DeleteMessage, idem bool) error {
	if m.OldTuple == nil {
		return engine.Permanent(fmt.Errorf("source %s: a DELETE from %s came without the old row: the table needs a primary key or REPLICA IDENTITY FULL", a.s.db, r))
	}
	where, args := a.match(r, m.OldTuple, nil)
	tag, err := a.dst.Exec(ctx, "DELETE FROM "+r.quoted()+" WHERE "+where, args...)
	if err != nil {
		return engine.Permanent(fmt.Errorf("target %s: delete from %s: %w", a.s.db, r, err))
	}
	if tag.RowsAffected() == 0 && !idem {
		return engine.Permanent(fmt.Errorf("target %s: a DELETE from %s found no row: the target differs from the source (was it written to?)", a.s.db, r))
	}
	return nil
}
