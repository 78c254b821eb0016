package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Reading a table's metadata costs a round trip per query, and the server
// opens the table's definition for each: three queries per table were
// three quarters of a second per thousand tables before a row moved.
// loadTableInfos reads the columns, keys and sizes of many tables with one
// query per kind over information_schema, whole databases at once where
// the job takes them whole, and names in batches otherwise.

// metaBatch bounds the table names in one query's IN list.
const metaBatch = 500

// metaScope is one query's filter: a database, whole or some of its
// tables.
type metaScope struct {
	db     string
	tables []string // nil: the whole database
}

func (s metaScope) where(schemaCol, tableCol string) (string, []any) {
	w := schemaCol + " = ?"
	a := []any{s.db}
	if s.tables != nil {
		w += " AND " + tableCol + " IN (" + placeholders(len(s.tables)) + ")"
		a = append(a, args(s.tables)...)
	}
	return w, a
}

// scopes splits tables into query filters: a database whose every base
// table is wanted (whole) is read whole, which spares the server from
// matching thousands of names.
func scopes(tables []object, whole map[string]bool) []metaScope {
	var out []metaScope
	byDB := map[string][]string{}
	var order []string
	for _, t := range tables {
		if _, ok := byDB[t.db]; !ok {
			order = append(order, t.db)
		}
		byDB[t.db] = append(byDB[t.db], t.name)
	}
	for _, db := range order {
		names := byDB[db]
		if whole[db] {
			out = append(out, metaScope{db: db})
			continue
		}
		for len(names) > 0 {
			n := min(len(names), metaBatch)
			out = append(out, metaScope{db: db, tables: names[:n]})
			names = names[n:]
		}
	}
	return out
}

// loadTableInfos reads what copying needs of each table, keyed by
// tableID. whole names the databases all of whose tables are asked for.
func loadTableInfos(ctx context.Context, q queryer, tables []object, whole map[string]bool) (map[string]*tableInfo, error) {
	out := make(map[string]*tableInfo, len(tables))
	for _, t := range tables {
		out[tableID(t.db, t.name)] = &tableInfo{db: t.db, name: t.name}
	}
	for _, s := range scopes(tables, whole) {
		if err := loadScope(ctx, q, s, out); err != nil {
			return nil, err
		}
	}
	for _, t := range out {
		if len(t.columns) == 0 {
			return nil, fmt.Errorf("%s has no columns to copy (or the source user cannot see them)", t)
		}
	}
	return out, nil
}

// loadTableInfo reads one table's columns, key and size from the source.
func loadTableInfo(ctx context.Context, q queryer, db, name string) (*tableInfo, error) {
	infos, err := loadTableInfos(ctx, q, []object{{db: db, name: name, kind: "BASE TABLE"}}, nil)
	if err != nil {
		return nil, err
	}
	return infos[tableID(db, name)], nil
}

// colMeta is what the key choice needs of a column besides tableInfo's.
type colMeta struct {
	dataType, colType string
	nullable          bool
}

func loadScope(ctx context.Context, q queryer, s metaScope, out map[string]*tableInfo) error {
	what := quoteIdent(s.db)
	if s.tables != nil && len(s.tables) == 1 {
		what += "." + quoteIdent(s.tables[0])
	}
	meta := map[string]map[string]colMeta{} // tableID -> column -> meta
	// information_schema compares names without regard to case and
	// answers with the server's spelling, which differs from the name
	// asked for where lower_case_table_names differs between the servers.
	folded := map[string]string{}
	for id, t := range out {
		if t.db == s.db {
			folded[strings.ToLower(t.name)] = id
		}
	}
	find := func(table string) (string, *tableInfo) {
		id := tableID(s.db, table)
		if t := out[id]; t != nil {
			return id, t
		}
		id = folded[strings.ToLower(table)]
		return id, out[id]
	}
	w, a := s.where("TABLE_SCHEMA", "TABLE_NAME")
	rows, err := q.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COALESCE(CHARACTER_SET_NAME, ''), EXTRA, COLUMN_TYPE, IS_NULLABLE
		FROM information_schema.COLUMNS WHERE `+w+` ORDER BY TABLE_NAME, ORDINAL_POSITION`, a...)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", what, err)
	}
	for rows.Next() {
		var table, col, dataType, charset, extra, colType, isNull string
		if err := rows.Scan(&table, &col, &dataType, &charset, &extra, &colType, &isNull); err != nil {
			rows.Close()
			return err
		}
		id, t := find(table)
		if t == nil {
			continue // a table the job does not copy
		}
		if meta[id] == nil {
			meta[id] = map[string]colMeta{}
		}
		meta[id][col] = colMeta{dataType: dataType, colType: colType, nullable: isNull == "YES"}
		// Generated columns are computed by the target from the others.
		if isGeneratedExtra(extra) {
			continue
		}
		if dataType == "json" && charset == "" {
			charset = "utf8mb4"
		}
		t.columns = append(t.columns, column{name: col, kind: kindOf(dataType, charset), charset: charset, bitOrSpatial: isBitOrSpatial(dataType), year: strings.EqualFold(dataType, "year"), json: strings.EqualFold(dataType, "json")})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the columns of %s: %w", what, err)
	}

	// The primary key, else the first unique key whose columns are all NOT
	// NULL and whole (not a prefix: PRIMARY KEY (a, b(10)) does not make a
	// unique): such a key identifies rows and orders them.
	w, a = s.where("TABLE_SCHEMA", "TABLE_NAME")
	rows, err = q.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART IS NOT NULL
		FROM information_schema.STATISTICS WHERE `+w+` AND NON_UNIQUE = 0
		ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, a...)
	if err != nil {
		return fmt.Errorf("read the keys of %s: %w", what, err)
	}
	type keys struct {
		order    []string
		cols     map[string][]string
		unusable map[string]bool
	}
	byTable := map[string]*keys{}
	for rows.Next() {
		var table, index, col string
		var prefix bool
		if err := rows.Scan(&table, &index, &col, &prefix); err != nil {
			rows.Close()
			return err
		}
		id, t := find(table)
		if t == nil {
			continue // a table the job does not copy
		}
		k := byTable[id]
		if k == nil {
			k = &keys{cols: map[string][]string{}, unusable: map[string]bool{}}
			byTable[id] = k
		}
		if _, ok := k.cols[index]; !ok {
			k.order = append(k.order, index)
		}
		k.cols[index] = append(k.cols[index], col)
		if meta[id][col].nullable || prefix {
			k.unusable[index] = true // unusable as a row's identity
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the keys of %s: %w", what, err)
	}
	for id, k := range byTable {
		t := out[id]
		for _, index := range k.order {
			if !k.unusable[index] {
				t.key = k.cols[index]
				break
			}
		}
		if len(t.key) > 0 {
			first := meta[id][t.key[0]]
			t.intKey = isIntType(first.dataType)
			t.unsigned = strings.Contains(strings.ToLower(first.colType), "unsigned")
		}
	}

	w, a = s.where("TABLE_SCHEMA", "TABLE_NAME")
	rows, err = q.QueryContext(ctx, "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES WHERE "+w, a...)
	if err != nil {
		return fmt.Errorf("read the sizes of %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var estRows, dataLen sql.NullInt64
		if err := rows.Scan(&table, &estRows, &dataLen); err != nil {
			return err
		}
		if _, t := find(table); t != nil {
			t.estRows, t.estBytes = estRows.Int64, dataLen.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the sizes of %s: %w", what, err)
	}
	return nil
}
