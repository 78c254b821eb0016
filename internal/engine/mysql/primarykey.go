package mysql

import (
	"context"
	"fmt"

	"github.com/opendts/opendts/internal/engine"
)

const primaryKeyName = "PrimaryKeyCheck"

type primaryKeyCheck struct{}

func (primaryKeyCheck) Name() string { return primaryKeyName }

// Check warns about selected tables that have neither a primary key nor a
// unique key on NOT NULL columns. Such tables still migrate, but nothing
// identifies a row: the copy cannot be split into key ranges, a retried
// batch can duplicate rows, and the incremental phase must match updates and
// deletes on every column. A unique key with a nullable column does not
// count: it admits several NULL rows.
func (primaryKeyCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	const n = primaryKeyName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	inv, err := r.inventory(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read information_schema.")
	}
	if len(inv.dbs) == 0 {
		return pass(n, "no table is selected")
	}
	keyed, err := keyedTables(ctx, r.src, inv)
	if err != nil {
		return warn(n, fmt.Sprintf("read the %s's indexes: %s", r.src.where(), err), "Check the tables' keys by hand.")
	}
	var without []string
	tables := 0
	for _, o := range inv.objects {
		if !o.isTable() {
			continue
		}
		tables++
		if !keyed[tableKey{o.db, o.name}] {
			without = append(without, o.String())
		}
	}
	if len(without) > 0 {
		return warn(n, fmt.Sprintf("%d of %d selected table(s) have no primary key or NOT NULL unique key: %s",
			len(without), tables, joinLimited(without, ", ", 20)),
			"Add a primary key to each (ALTER TABLE ... ADD PRIMARY KEY (...)) before migrating; without one, retries can duplicate rows and the incremental phase is slow.")
	}
	return pass(n, "all %d selected table(s) have a primary key or a NOT NULL unique key", tables)
}

// keyedTables lists the tables of inv's databases that have a unique index
// none of whose columns is nullable (the primary key is one).
func keyedTables(ctx context.Context, s *side, inv *inventory) (map[tableKey]bool, error) {
	q := "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, MAX(NULLABLE = 'YES') FROM information_schema.STATISTICS" +
		" WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA IN (" + placeholders(len(inv.dbs)) + ")" +
		" GROUP BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME"
	rows, err := s.db.QueryContext(ctx, q, args(inv.dbs)...)
	if err != nil {
		return nil, err
	}
	keyed := make(map[tableKey]bool)
	err = scanAll(rows, func() error {
		var schema, table, index string
		var nullable bool
		if err := rows.Scan(&schema, &table, &index, &nullable); err != nil {
			return err
		}
		if !nullable {
			keyed[tableKey{schema, table}] = true
		}
		return nil
	})
	return keyed, err
}
