package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// LOAD DATA LOCAL INFILE is the target's cheapest way in: no SQL to parse
// per row, about half the server CPU of multi-row INSERTs for the same rows.
// The rows stream from the snapshot through a pipe, never touching a disk.
// Servers that forbid it (local_infile=OFF, MySQL 8's default) get INSERTs.

var readerSeq atomic.Int64

// loadDataFits reports whether LOAD DATA can write every column of t as
// bytes. BIT and geometry values cannot be given as text, and MySQL's JSON
// refuses binary text, so those tables use INSERTs.
func loadDataFits(t *tableInfo) bool {
	for _, c := range t.columns {
		if c.bitOrSpatial || c.json {
			return false
		}
	}
	return true
}

// loadDataDenied reports the errors of a server or driver that does not
// allow LOAD DATA LOCAL.
func loadDataDenied(err error) bool {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1148, // the used command is not allowed
			3948, // loading local data is disabled
			2068, // rejected due to restrictions on access
			4166: // MariaDB: local infile capability disabled
			return true
		}
	}
	return strings.Contains(err.Error(), "local file") && strings.Contains(err.Error(), "not registered")
}

func (t *tableInfo) loadDataSQL(readerName string) string {
	names := make([]string, len(t.columns))
	year := make([]bool, len(t.columns))
	for i, c := range t.columns {
		names[i], year[i] = c.name, c.year
	}
	return loadDataStatement(readerName, "INTO", t.String(), names, year)
}

// loadDataStatement is the LOAD DATA LOCAL statement the copy and the
// change stream write rows with, in the format appendTSVEscaped makes:
// verb is INTO or REPLACE INTO. YEAR columns go through a variable and
// "+ 0": as text "0" would be the year 2000, as a number it is 0000.
func loadDataStatement(readerName, verb, table string, names []string, year []bool) string {
	cols := make([]string, len(names))
	var set []string
	for i, name := range names {
		cols[i] = quoteIdent(name)
		if year[i] {
			v := "@y" + strconv.Itoa(i)
			cols[i] = v
			set = append(set, quoteIdent(name)+" = "+v+" + 0")
		}
	}
	q := "LOAD DATA LOCAL INFILE 'Reader::" + readerName + "' " + verb + " TABLE " + table +
		" CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" +
		strings.Join(cols, ", ") + ")"
	if len(set) > 0 {
		q += " SET " + strings.Join(set, ", ")
	}
	return q
}

// loadChunk copies a chunk with one LOAD DATA in a transaction that also
// marks the chunk done.
func (c *copier) loadChunk(ctx context.Context, reader *sql.Conn, t *tableInfo, ch chunk) (int64, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	name := fmt.Sprintf("opendts-%s-%d-%d", c.cp.jobID, ch.ID, readerSeq.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader { return pr })
	defer mysql.DeregisterReaderHandler(name)

	var rowCount, byteCount int64
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rowCount, byteCount, readErr = c.streamTSV(ctx, reader, t, ch, pw)
		// nil closes with EOF: the end of the file for the server.
		pw.CloseWithError(readErr)
	}()

	conn, err := c.dst.Conn(ctx)
	if err != nil {
		pr.CloseWithError(err)
		wg.Wait()
		return 0, 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		pr.CloseWithError(err)
		wg.Wait()
		return 0, 0, err
	}
	defer tx.Rollback()
	res, execErr := tx.ExecContext(ctx, t.loadDataSQL(name))
	// Unblock the reader if the server stopped reading early.
	pr.CloseWithError(io.ErrClosedPipe)
	wg.Wait()
	if execErr != nil {
		if loadDataDenied(execErr) {
			return 0, 0, errLoadDataDenied
		}
		// A reader that failed on its own says more than the server's
		// complaint about a file that ended early.
		if readErr != nil && !errors.Is(readErr, io.ErrClosedPipe) {
			return 0, 0, &readError{readErr}
		}
		return 0, 0, fmt.Errorf("load chunk %d of %s on the target: %w", ch.ID, t, execErr)
	}
	if readErr != nil {
		return 0, 0, &readError{readErr}
	}
	// LOAD DATA LOCAL skips what it cannot take (duplicates) with a warning
	// instead of an error: a short count must fail the chunk, not commit it.
	if n, err := res.RowsAffected(); err != nil || n != rowCount {
		return 0, 0, fmt.Errorf("load chunk %d of %s: the target took %d of %d rows%s", ch.ID, t, n, rowCount, warnings(ctx, tx))
	}
	// The mark carries the fence of cluster mode (fence.go).
	q, args := c.cp.fence.markSQL(ch.ID, rowCount, byteCount)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return 0, 0, c.cp.fence.explain(ctx, fmt.Sprintf("commit of chunk %d", ch.ID), err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	return rowCount, byteCount, nil
}

var errLoadDataDenied = errors.New("the target does not allow LOAD DATA LOCAL INFILE")

// streamTSV writes the chunk's rows in LOAD DATA's default text format:
// tab between fields, newline after rows, \N for NULL, backslash escapes.
func (c *copier) streamTSV(ctx context.Context, reader *sql.Conn, t *tableInfo, ch chunk, out io.Writer) (int64, int64, error) {
	w := bufio.NewWriterSize(out, 256<<10)
	var size int64
	line := make([]byte, 0, 4096)
	n, err := scanChunk(ctx, reader, t, ch, func(vals []sql.RawBytes) error {
		line = line[:0]
		for i, v := range vals {
			if i > 0 {
				line = append(line, '\t')
			}
			if v == nil {
				line = append(line, '\\', 'N')
				continue
			}
			if len(v) > tsvPiece {
				// A large value goes out in pieces as it is escaped:
				// memory holds the row as read and a piece, not the
				// value escaped whole as well.
				n, err := writeTSVEscaped(w, line, v)
				size += n
				if err != nil {
					return err
				}
				line = line[:0]
				continue
			}
			line = appendTSVEscaped(line, v)
		}
		line = append(line, '\n')
		size += int64(len(line))
		_, err := w.Write(line)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return n, size, w.Flush()
}

// tsvPiece is the size of the pieces a large value is escaped in.
const tsvPiece = 64 << 10

// writeTSVEscaped writes the line so far, then v escaped, a piece at a
// time; it returns the bytes written.
func writeTSVEscaped(w *bufio.Writer, line, v []byte) (int64, error) {
	size := int64(len(line))
	if _, err := w.Write(line); err != nil {
		return 0, err
	}
	piece := make([]byte, 0, 2*tsvPiece)
	for len(v) > 0 {
		n := min(len(v), tsvPiece)
		piece = appendTSVEscaped(piece[:0], v[:n])
		v = v[n:]
		size += int64(len(piece))
		if _, err := w.Write(piece); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// appendTSVEscaped escapes what LOAD DATA's default format gives meaning
// to; every other byte goes as it is (CHARACTER SET binary: no conversion).
func appendTSVEscaped(buf, v []byte) []byte {
	for _, b := range v {
		switch b {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\n':
			buf = append(buf, '\\', 'n')
		case 0:
			buf = append(buf, '\\', '0')
		default:
			buf = append(buf, b)
		}
	}
	return buf
}

// warnings describes the first warnings of the last statement on q (the
// transaction or connection that ran it), as " (...)", or "".
func warnings(ctx context.Context, q queryer) string {
	rows, err := q.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return ""
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var level, msg string
		var code int
		if rows.Scan(&level, &code, &msg) == nil {
			out = append(out, fmt.Sprintf("%s %d: %s", level, code, msg))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, "; ") + ")"
}
