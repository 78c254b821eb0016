package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// cdcColumn is one column of a replicated table as row events carry it.
type cdcColumn struct {
	// padTo is BINARY(n)'s n: its values are padded with zero bytes.
	padTo     int
	name      string
	dataType  string
	kind      colKind
	charset   string
	unsigned  bool
	generated bool
}

// cdcTable is a replicated table's shape on the target, which opendts keeps
// equal to the source's at the binlog position being applied by applying
// the DDL in order.
type cdcTable struct {
	db, name string
	cols     []cdcColumn
	stored   []int // positions of the columns that are not generated
	key      []int // positions of the key columns; empty: no key
	// otherUnique: a unique index besides the key, whose values can move
	// between rows; changes to such a table, or one in a foreign key
	// (cascades), go serially: one transaction, in order, with the
	// position, since replaying them is not idempotent.
	otherUnique bool
	foreignKey  bool
	// keyStored are the key columns' positions among the stored values;
	// generatedKey: a key column is generated, so row images written back
	// do not carry it and rows cannot be told apart by their values.
	keyStored    []int
	generatedKey bool
	// nonTransactional: the target's engine (MyISAM, Aria...) keeps what
	// a failed group wrote, so its changes must converge when replayed.
	nonTransactional bool
}

// serial reports whether the table's changes need the serial path: each
// row change its own statement, in binlog order. The others are folded
// into their net effect per key (see group).
func (t *cdcTable) serial() bool {
	return len(t.key) == 0 || t.otherUnique || t.foreignKey || t.generatedKey
}

// byKey reports whether a row is found by its key; otherwise by all its
// stored values, one row at most.
func (t *cdcTable) byKey() bool { return len(t.key) > 0 && !t.generatedKey }

func (t *cdcTable) String() string { return quoteIdent(t.db) + "." + quoteIdent(t.name) }

// loadCDCTable reads a table's columns and key from the target.
func loadCDCTable(ctx context.Context, q queryer, db, name string) (*cdcTable, error) {
	t := &cdcTable{db: db, name: name}
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COALESCE(CHARACTER_SET_NAME, ''), EXTRA, COLUMN_TYPE,
		COALESCE(CHARACTER_OCTET_LENGTH, 0)
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s on the target: %w", t, err)
	}
	for rows.Next() {
		var c cdcColumn
		var extra, colType string
		var octets int
		if err := rows.Scan(&c.name, &c.dataType, &c.charset, &extra, &colType, &octets); err != nil {
			rows.Close()
			return nil, err
		}
		if c.dataType == "binary" {
			// Row events carry BINARY(n) values without their trailing
			// zero bytes; they are padded back to the column's length.
			c.padTo = octets
		}
		if c.dataType == "json" && c.charset == "" {
			c.charset = "utf8mb4"
		}
		c.kind = kindOf(c.dataType, c.charset)
		c.unsigned = strings.Contains(strings.ToLower(colType), "unsigned")
		c.generated = isGeneratedExtra(extra)
		if !c.generated {
			t.stored = append(t.stored, len(t.cols))
		}
		t.cols = append(t.cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(t.cols) == 0 {
		return nil, fmt.Errorf("table %s does not exist on the target", t)
	}
	info, err := loadTableInfo(ctx, q, db, name)
	if err != nil {
		return nil, err
	}
	var uniques int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0", db, name).Scan(&uniques); err != nil {
		return nil, fmt.Errorf("read the unique keys of %s: %w", t, err)
	}
	t.otherUnique = uniques > 1
	var fks int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)`, db, name, db, name).Scan(&fks); err != nil {
		return nil, fmt.Errorf("read the foreign keys of %s: %w", t, err)
	}
	t.foreignKey = fks > 0
	var engineName sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, name).Scan(&engineName); err != nil {
		return nil, fmt.Errorf("read the engine of %s: %w", t, err)
	}
	switch strings.ToLower(engineName.String) {
	case "innodb", "rocksdb", "tokudb", "ndbcluster", "":
	default:
		t.nonTransactional = true
	}
	for _, k := range info.key {
		for i, c := range t.cols {
			if c.name == k {
				t.key = append(t.key, i)
			}
		}
	}
	for _, k := range t.key {
		stored := false
		for i, p := range t.stored {
			if p == k {
				t.keyStored = append(t.keyStored, i)
				stored = true
			}
		}
		if !stored {
			t.generatedKey = true
		}
	}
	return t, nil
}

// intBits is the width of an integer type, to undo the sign row events
// give unsigned values.
func intBits(dataType string) uint {
	switch dataType {
	case "tinyint":
		return 8
	case "smallint":
		return 16
	case "mediumint":
		return 24
	case "int", "integer":
		return 32
	}
	return 64
}

// literal writes a value decoded from a row event as SQL that gives the
// target the same stored bytes.
func literal(buf []byte, c cdcColumn, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, "NULL"...)
	case int8:
		return appendInt(buf, c, int64(x))
	case int16:
		return appendInt(buf, c, int64(x))
	case int32:
		return appendInt(buf, c, int64(x))
	case int64:
		if c.dataType == "bit" {
			return strconv.AppendUint(buf, uint64(x), 10)
		}
		return appendInt(buf, c, x)
	case int:
		return strconv.AppendInt(buf, int64(x), 10)
	case uint64:
		return strconv.AppendUint(buf, x, 10)
	case float32:
		return strconv.AppendFloat(buf, float64(x), 'g', -1, 32)
	case float64:
		return strconv.AppendFloat(buf, x, 'g', -1, 64)
	case string:
		if c.kind == kindExact {
			// DECIMAL arrives as its exact digits: a number, not text.
			return append(buf, x...)
		}
		return appendStringLiteral(buf, c, []byte(x))
	case []byte:
		return appendStringLiteral(buf, c, x)
	}
	return append(buf, fmt.Sprintf("'%v'", v)...)
}

func appendInt(buf []byte, c cdcColumn, v int64) []byte {
	if c.unsigned && v < 0 {
		bits := intBits(c.dataType)
		u := uint64(v)
		if bits < 64 {
			u &= (1 << bits) - 1
		}
		return strconv.AppendUint(buf, u, 10)
	}
	return strconv.AppendInt(buf, v, 10)
}

func appendStringLiteral(buf []byte, c cdcColumn, v []byte) []byte {
	switch c.kind {
	case kindText:
		buf = append(buf, '_')
		buf = append(buf, c.charset...)
	case kindBinary:
		buf = append(buf, "_binary"...)
	}
	buf = append(buf, '\'')
	buf = appendEscaped(buf, v)
	return append(buf, '\'')
}

// rowValues picks the stored columns' values out of a row image, which may
// or may not carry generated columns.
func (t *cdcTable) rowValues(row []any) ([]any, error) {
	var out []any
	switch len(row) {
	case len(t.cols):
		out = make([]any, len(t.stored))
		for i, p := range t.stored {
			out[i] = row[p]
		}
	case len(t.stored):
		out = append([]any(nil), row...)
	default:
		return nil, fmt.Errorf("a row event for %s has %d columns, the target's table %d: the schemas have drifted", t, len(row), len(t.cols))
	}
	for i := range out {
		c := t.storedCol(i)
		if c.padTo == 0 {
			continue
		}
		var b []byte
		switch v := out[i].(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		default:
			continue
		}
		if len(b) < c.padTo {
			padded := make([]byte, c.padTo)
			copy(padded, b)
			out[i] = padded
		}
	}
	return out, nil
}

func (t *cdcTable) storedCol(i int) cdcColumn { return t.cols[t.stored[i]] }

// where appends the condition that finds a row: its key, or every stored
// column when the table has no key.
func (t *cdcTable) where(buf []byte, vals []any) []byte {
	first := true
	add := func(c cdcColumn, v any) {
		if !first {
			buf = append(buf, " AND "...)
		}
		first = false
		_, isString := v.(string)
		_, isBytes := v.([]byte)
		switch {
		case c.kind == kindText && !t.byKey() && (isString || isBytes):
			// Byte for byte, not by collation ('a' = 'A '); keys keep the
			// plain comparison, which their index serves. ENUM and SET
			// come as numbers, compared as such.
			buf = append(buf, "BINARY "...)
			buf = append(buf, quoteIdent(c.name)...)
		default:
			buf = append(buf, quoteIdent(c.name)...)
		}
		buf = append(buf, " <=> "...)
		if f, ok := v.(float32); ok {
			// The column widens to DOUBLE to compare: so must the value.
			buf = strconv.AppendFloat(buf, float64(f), 'g', -1, 64)
		} else {
			buf = literal(buf, c, v)
		}
	}
	if t.byKey() {
		for _, i := range t.keyStored {
			add(t.storedCol(i), vals[i])
		}
		return buf
	}
	for i := range vals {
		// MySQL's JSON comes as go-mysql's rendering of the binary
		// document, which need not compare equal to it (dates inside
		// become strings): it is left out of the match.
		if c := t.storedCol(i); c.dataType != "json" {
			add(c, vals[i])
		}
	}
	if first {
		buf = append(buf, "TRUE"...)
	}
	return buf
}

func (t *cdcTable) columnList() string {
	names := make([]string, len(t.stored))
	for i, p := range t.stored {
		names[i] = quoteIdent(t.cols[p].name)
	}
	return strings.Join(names, ", ")
}

func (t *cdcTable) valuesTuple(buf []byte, vals []any) []byte {
	buf = append(buf, '(')
	for i, v := range vals {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = literal(buf, t.storedCol(i), v)
	}
	return append(buf, ')')
}

// replaceSQL writes the last images of a folded table's rows. Such a table
// has its key as only unique index, no foreign key either way and, while
// changes are applied, no trigger: there REPLACE updates a row that is
// there in place (MariaDB and MySQL do so when the duplicate is in the last
// unique index and nothing references the table), without the per-column
// assignments ON DUPLICATE KEY UPDATE has the server parse for every
// statement.
func (t *cdcTable) replaceSQL(rows [][]any) string {
	buf := []byte("REPLACE INTO " + t.String() + " (" + t.columnList() + ") VALUES ")
	for i, r := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = t.valuesTuple(buf, r)
	}
	return string(buf)
}

// insertRowsSQL is a multi-row INSERT; upsert adds ON DUPLICATE KEY UPDATE
// of every column.
func (t *cdcTable) insertRowsSQL(rows [][]any, upsert bool) string {
	buf := []byte("INSERT INTO " + t.String() + " (" + t.columnList() + ") VALUES ")
	for i, r := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = t.valuesTuple(buf, r)
	}
	if upsert {
		// An update in place when the row is there (a replayed insert, or
		// an update): cheaper for InnoDB than REPLACE's delete and insert.
		buf = append(buf, " ON DUPLICATE KEY UPDATE "...)
		for i, p := range t.stored {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			name := quoteIdent(t.cols[p].name)
			buf = append(buf, name...)
			buf = append(buf, " = VALUES("...)
			buf = append(buf, name...)
			buf = append(buf, ')')
		}
	}
	return string(buf)
}

func (t *cdcTable) deleteSQL(vals []any) string {
	buf := []byte("DELETE FROM " + t.String() + " WHERE ")
	buf = t.where(buf, vals)
	if !t.byKey() {
		buf = append(buf, " LIMIT 1"...)
	}
	return string(buf)
}

// updateSQL finds the row by its key (or, without one, by all its values,
// one row at most) and sets its new values, key included: on the serial
// path an update stays an update, so foreign keys cascade as on the
// source and a missing row shows.
func (t *cdcTable) updateSQL(before, after []any) string {
	buf := []byte("UPDATE " + t.String() + " SET ")
	for i, v := range after {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		buf = append(buf, quoteIdent(t.storedCol(i).name)...)
		buf = append(buf, " = "...)
		buf = literal(buf, t.storedCol(i), v)
	}
	buf = append(buf, " WHERE "...)
	buf = t.where(buf, before)
	if !t.byKey() {
		buf = append(buf, " LIMIT 1"...)
	}
	return string(buf)
}
