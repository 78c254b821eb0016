package mysql

import (
	"context"
	"database/sql"
	"strings"
)

// colKind says how a column's value is read and written back so that the
// target stores the same bytes.
type colKind int

const (
	// kindExact: integers, DECIMAL, DOUBLE: the server's text is exact.
	kindExact colKind = iota
	// kindFloat: FLOAT's text is rounded to 6 digits, so it is read as a
	// DOUBLE, whose text round-trips, and narrowed again by the target.
	kindFloat
	// kindTemporal: dates and times, as the server prints them in UTC.
	kindTemporal
	// kindBinary: bytes with no charset (BINARY, BLOB, BIT, geometry).
	kindBinary
	// kindText: bytes in the column's charset, written with an introducer
	// so that no conversion happens on the way.
	kindText
)

type column struct {
	name    string
	kind    colKind
	charset string
	// bitOrSpatial values cannot be loaded from text (see loaddata.go).
	bitOrSpatial bool
	// json: MySQL's JSON type refuses LOAD DATA's binary charset.
	json bool
	// year: the server sends the zero year as "0", which as text is the
	// year 2000; it must be written as a number.
	year bool
}

// tableInfo is what copying a table needs to know.
type tableInfo struct {
	db, name string
	// columns are the stored (not generated) columns in table order.
	columns []column
	// key is the primary key, or a unique key of NOT NULL columns; empty
	// for a table without one.
	key []string
	// intKey is set when the key's first column is an integer, so the
	// table can be split into ranges of it.
	intKey   bool
	unsigned bool
	estRows  int64
	estBytes int64
}

func (t *tableInfo) String() string { return quoteIdent(t.db) + "." + quoteIdent(t.name) }

func kindOf(dataType, charset string) colKind {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "double", "real":
		return kindExact
	case "year":
		// As a number: the string '0' would be the year 2000, the number 0
		// is the zero year 0000.
		return kindExact
	case "float":
		return kindFloat
	case "date", "datetime", "timestamp", "time":
		return kindTemporal
	case "json":
		return kindText
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		if charset == "" || charset == "binary" {
			return kindBinary
		}
		return kindText
	}
	// binary, varbinary, blobs, bit, geometry and anything newer: bytes.
	return kindBinary
}

// isGeneratedExtra reads information_schema.COLUMNS.EXTRA: VIRTUAL or
// STORED (PERSISTENT) GENERATED columns are computed by the server, while
// MySQL 8's DEFAULT_GENERATED only marks an expression default, a value to
// copy like any other.
func isGeneratedExtra(extra string) bool {
	e := strings.ToUpper(extra)
	return strings.Contains(e, "VIRTUAL") || strings.Contains(e, "STORED GENERATED") || strings.Contains(e, "PERSISTENT")
}

func isBitOrSpatial(dataType string) bool {
	switch strings.ToLower(dataType) {
	case "bit", "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return true
	}
	return false
}

func isIntType(dataType string) bool {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// queryer is a pool or a single connection.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// selectList is the column list a chunk reads, in t.columns order.
func (t *tableInfo) selectList() string {
	parts := make([]string, len(t.columns))
	for i, c := range t.columns {
		if c.kind == kindFloat {
			// + 0E0 widens to DOUBLE on every version (CAST AS DOUBLE
			// needs MySQL 8.0.17).
			parts[i] = "(" + quoteIdent(c.name) + " + 0E0)"
		} else {
			parts[i] = quoteIdent(c.name)
		}
	}
	return strings.Join(parts, ", ")
}

// insertPrefix starts every INSERT of the table.
func (t *tableInfo) insertPrefix() string {
	parts := make([]string, len(t.columns))
	for i, c := range t.columns {
		parts[i] = quoteIdent(c.name)
	}
	return "INSERT INTO " + t.String() + " (" + strings.Join(parts, ", ") + ") VALUES "
}
