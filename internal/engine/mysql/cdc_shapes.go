package mysql

import (
	"context"
	"strings"
)

// The change stream keeps each replicated table's shape on the target
// (cdcTable), read when the table's first change comes. A DDL changes the
// shape of the table it names, and through a foreign key added or dropped
// the serial flag of the tables at the other end; every other cached
// shape stays valid. With thousands of tables under writes, forgetting all
// of them on each DDL made every table read its shape again (five
// information_schema queries) at its next change.

// shapesTouched returns what forgets, once q is applied, the cached shapes
// it may change: the table it names and the tables linked to it by a
// foreign key before or after. A statement about several tables, about a
// database, or one it cannot name forgets them all.
func (inc *incremental) shapesTouched(ctx context.Context, q, schema string, multi bool) func() {
	forgetAll := func() { inc.tables = map[string]*cdcTable{} }
	target, ok := ddlTarget(q)
	if multi || !ok {
		return forgetAll
	}
	db, name := splitQualified(target, schema)
	touched := []tableName{{db, name}}
	before, err := inc.fkNeighbours(ctx, db, name)
	if err != nil {
		return forgetAll
	}
	touched = append(touched, before...)
	return func() {
		after, err := inc.fkNeighbours(ctx, db, name)
		if err != nil {
			forgetAll()
			return
		}
		touched = append(touched, after...)
		// Names as the statement and information_schema spell them may
		// differ in case from the events' (lower_case_table_names).
		for key := range inc.tables {
			kdb, kname, _ := strings.Cut(key, "\x00")
			for _, t := range touched {
				if strings.EqualFold(kdb, t.db) && strings.EqualFold(kname, t.name) {
					delete(inc.tables, key)
					break
				}
			}
		}
	}
}

// fkNeighbours lists the tables at the other end of db.name's foreign
// keys on the target, both ways.
func (inc *incremental) fkNeighbours(ctx context.Context, db, name string) ([]tableName, error) {
	rows, err := inc.m.dst.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME
		FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)`, db, name, db, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tableName
	for rows.Next() {
		var a, b tableName
		if err := rows.Scan(&a.db, &a.name, &b.db, &b.name); err != nil {
			return nil, err
		}
		out = append(out, a, b)
	}
	return out, rows.Err()
}
