package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/go-sql-driver/mysql"
)

// A folded table with many rows to write in a group (a large transaction's
// piece, a catch-up) gets them through LOAD DATA LOCAL INFILE ... REPLACE
// instead of multi-row REPLACE statements: the target then parses no SQL
// per row, which is most of what a statement costs it beyond the row's own
// work (the copy measured half the target CPU). REPLACE into a folded
// table (its key the only unique index, no foreign key either way, no
// trigger while changes are applied) updates rows in place, as the
// statements do. LOCAL turns data errors into warnings: any warning fails
// the group, so a value the text form cannot carry never arrives changed.

// loadFits reports whether every stored column's values, as row events
// decode them, have an exact text form for LOAD DATA. BIT values and
// geometry are bytes without one; MySQL's JSON arrives as go-mysql's
// rendering of the binary document; ENUM and SET come as numbers, and the
// number 0 (the error value ” a non-strict source may hold) cannot be
// loaded without the warning that fails the group.
func (t *cdcTable) loadFits() bool {
	for _, p := range t.stored {
		switch t.cols[p].dataType {
		case "bit", "json", "enum", "set", "geometry", "point", "linestring", "polygon", "multipoint",
			"multilinestring", "multipolygon", "geometrycollection", "geomcollection":
			return false
		}
	}
	return true
}

// loadSQL is the LOAD DATA ... REPLACE statement for t's stored columns.
func (t *cdcTable) loadSQL(readerName string) string {
	names := make([]string, len(t.stored))
	year := make([]bool, len(t.stored))
	for i, p := range t.stored {
		names[i], year[i] = t.cols[p].name, t.cols[p].dataType == "year"
	}
	return loadDataStatement(readerName, "REPLACE INTO", t.String(), names, year)
}

// appendTSV writes a decoded value in LOAD DATA's text form: what literal
// writes, without quotes or introducers, escaped for the format.
func appendTSV(buf []byte, c cdcColumn, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, '\\', 'N')
	case string:
		return appendTSVEscaped(buf, []byte(x))
	case []byte:
		return appendTSVEscaped(buf, x)
	}
	return literal(buf, c, v)
}

// upsertRows counts the rows the group writes (not deletes) in the table.
func (n *tableNet) upsertRows() int {
	c := 0
	for _, r := range n.rows {
		if !r.deleted {
			c++
		}
	}
	return c
}

// loadRows writes the table's upserted rows of a group with one LOAD DATA
// on conn, inside the group's transaction.
func (n *tableNet) loadRows(ctx context.Context, conn *sql.Conn, jobID string) error {
	t := n.t
	var data bytes.Buffer
	var line []byte
	rows := 0
	for _, r := range n.rows {
		if r.deleted {
			continue
		}
		line = line[:0]
		for i, v := range r.vals {
			if i > 0 {
				line = append(line, '\t')
			}
			line = appendTSV(line, t.storedCol(i), v)
		}
		line = append(line, '\n')
		data.Write(line)
		rows++
	}
	name := fmt.Sprintf("opendts-apply-%s-%d", jobID, readerSeq.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(data.Bytes()) })
	defer mysql.DeregisterReaderHandler(name)
	if _, err := conn.ExecContext(ctx, t.loadSQL(name)); err != nil {
		return fmt.Errorf("load %d rows into %s: %w", rows, t, err)
	}
	var count int
	if err := conn.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&count); err != nil {
		return err
	}
	if count > 0 {
		return fmt.Errorf("the target changed values loading %d rows into %s: %d warning(s)%s; the group is not committed", rows, t, count, warnings(ctx, conn))
	}
	return nil
}
