package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/opendts/opendts/internal/engine"
)

// copier moves the planned chunks from the snapshot to the target with a
// fixed pool of workers. Each worker reads with its own snapshot reader and
// writes with its own target connection; reading and writing a chunk
// overlap through a small channel of statements, so memory stays at a few
// statements per worker whatever the table's size.
type copier struct {
	e      *Engine
	src    *sql.DB
	dst    *sql.DB
	snap   *snapshot
	tables map[string]*tableInfo
	cp     *checkpoint
	// maxStmt bounds one INSERT statement.
	maxStmt int
	// report receives each table's progress (engine.CopyReport.Table).
	report engine.CopyReport

	// noLoadData is set once the target refused LOAD DATA LOCAL.
	noLoadData atomic.Bool

	rows, bytes atomic.Int64
	// chunksDone counts chunks committed in this run and before it.
	chunksDone atomic.Int64
	// readTables counts the small tables each worker's reader has read,
	// when the snapshot has spare readers (copy_batch.go).
	readTables []int
}

// run copies every chunk not in done.
func (c *copier) run(ctx context.Context, chunks []chunk, done map[int][2]int64) error {
	// Each table's baseline (what earlier runs committed) comes before any
	// of its chunks.
	tables, order := planTables(chunks, done)
	for _, t := range order {
		c.report.Table(t.progress(0, 0))
	}
	todo := make(chan []chunk)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(todo)
		var left []chunk
		for _, ch := range interleave(chunks) {
			if d, ok := done[ch.ID]; ok {
				c.rows.Add(d[0])
				c.bytes.Add(d[1])
				c.chunksDone.Add(1)
				continue
			}
			left = append(left, ch)
		}
		// Small tables go in batches (copy_batch.go).
		for _, b := range batches(left) {
			select {
			case todo <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for i := range c.snap.readers {
		g.Go(func() error {
			for b := range todo {
				// A slot of the node's budget per chunk: jobs take
				// turns at chunk boundaries.
				release, err := c.e.cfg.Budget.Acquire(gctx, c.cp.jobID)
				if err != nil {
					return err
				}
				var rows []int64
				if len(b) == 1 {
					var n int64
					n, err = c.copyChunkWithRetry(gctx, i, b[0])
					rows = []int64{n}
				} else {
					rows, err = c.copyBatchWithRetry(gctx, i, b)
				}
				release()
				if err != nil {
					return err
				}
				c.chunksDone.Add(int64(len(b)))
				for k, ch := range b {
					c.report.Table(tables[tableID(ch.DB, ch.Table)].progress(rows[k], 1))
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// interleave orders chunks round-robin across tables, so that workers load
// different tables at once rather than contend for the pages, locks and
// auto-increment counter of one.
func interleave(chunks []chunk) []chunk {
	var order []string
	byTable := map[string][]chunk{}
	for _, ch := range chunks {
		k := tableID(ch.DB, ch.Table)
		if _, ok := byTable[k]; !ok {
			order = append(order, k)
		}
		byTable[k] = append(byTable[k], ch)
	}
	out := make([]chunk, 0, len(chunks))
	for i := 0; len(out) < len(chunks); i++ {
		for _, k := range order {
			if i < len(byTable[k]) {
				out = append(out, byTable[k][i])
			}
		}
	}
	return out
}

// copyChunkWithRetry copies a chunk, starting it over on a new connection
// when one side drops, and returns the rows it committed. A reader that
// lost its connection lost its snapshot too: the new one starts a snapshot
// of its own, which the log says.
func (c *copier) copyChunkWithRetry(ctx context.Context, worker int, ch chunk) (committed int64, err error) {
	t := c.tables[tableID(ch.DB, ch.Table)]
	if t == nil {
		return 0, fmt.Errorf("chunk %d belongs to %s.%s, which is no longer on the source", ch.ID, quoteIdent(ch.DB), quoteIdent(ch.Table))
	}
	attempt := 0
	err = c.e.retry(ctx, fmt.Sprintf("copy chunk %d of %s", ch.ID, t), func() error {
		attempt++
		if attempt > 1 {
			// The last attempt's commit may have landed with its answer
			// lost: then the chunk is done.
			var landed int64
			err := c.dst.QueryRowContext(ctx, "SELECT row_count FROM `"+checkpointDB+"`.`migrate_chunks` WHERE job_id = ? AND chunk_id = ?", c.cp.jobID, ch.ID).Scan(&landed)
			if err == nil {
				committed = landed
				c.rows.Add(landed)
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if c.snap.readers[worker] == nil {
			r, err := openReader(ctx, c.src)
			if err != nil {
				return err
			}
			c.e.cfg.Logger.Warn("a source reader was reconnected: its chunks come from a later snapshot than the others", "worker", worker)
			c.snap.readers[worker] = r
		}
		var rows, bytes int64
		var err error
		if !c.e.cfg.DisableLoadData && !c.noLoadData.Load() && loadDataFits(t) {
			rows, bytes, err = c.loadChunk(ctx, c.snap.readers[worker], t, ch)
			if errors.Is(err, errLoadDataDenied) {
				if !c.noLoadData.Swap(true) {
					c.e.cfg.Logger.Info("the target does not allow LOAD DATA LOCAL INFILE (local_infile); copying with INSERTs, which costs it more")
				}
				rows, bytes, err = c.copyChunk(ctx, c.snap.readers[worker], t, ch)
			}
		} else {
			rows, bytes, err = c.copyChunk(ctx, c.snap.readers[worker], t, ch)
		}
		if err != nil {
			var re *readError
			if errors.As(err, &re) && retryable(err) {
				closeReader(c.snap.readers[worker])
				c.snap.readers[worker] = nil
			}
			return err
		}
		c.rows.Add(rows)
		c.bytes.Add(bytes)
		c.e.cfg.Counters.CopiedRows(c.cp.jobID, rows, bytes)
		committed = rows
		return nil
	})
	return committed, err
}

// readError marks a failure on the source side of a chunk.
type readError struct{ err error }

func (e *readError) Error() string { return "read the source: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// copyChunk reads a chunk and writes it in one target transaction that also
// marks it done. A failing writer stops the reader through a channel, not
// by cancelling its query: the driver closes a connection whose query is
// cancelled, and with it the reader's snapshot.
func (c *copier) copyChunk(ctx context.Context, reader *sql.Conn, t *tableInfo, ch chunk) (rowCount, byteCount int64, err error) {
	wctx, cancelWrite := context.WithCancel(ctx)
	defer cancelWrite()
	stmts := make(chan []byte, 2)
	stopRead := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stmts)
		rowCount, byteCount, readErr = c.readChunk(ctx, reader, t, ch, stmts, stopRead)
		if readErr != nil {
			cancelWrite()
		}
	}()
	writeErr := c.writeChunk(wctx, ch, &rowCount, &byteCount, stmts)
	if writeErr != nil {
		close(stopRead)
	}
	// Drain what the reader still sends so it can stop.
	for range stmts {
	}
	wg.Wait()
	if readErr != nil && !errors.Is(readErr, errStopped) {
		return 0, 0, &readError{readErr}
	}
	if writeErr != nil {
		return 0, 0, writeErr
	}
	return rowCount, byteCount, nil
}

// errStopped ends a reader whose writer failed.
var errStopped = errors.New("the chunk's writer stopped")

// readChunk streams the chunk's rows as INSERT statements of at most
// c.maxStmt bytes (a single larger row makes a statement of its own).
func (c *copier) readChunk(ctx context.Context, reader *sql.Conn, t *tableInfo, ch chunk, out chan<- []byte, stop <-chan struct{}) (int64, int64, error) {
	prefix := t.insertPrefix()
	var buf []byte
	var size int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		select {
		case out <- buf:
		case <-stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
		buf = nil
		return nil
	}
	n, err := scanChunk(ctx, reader, t, ch, func(vals []sql.RawBytes) error {
		if buf == nil {
			buf = make([]byte, 0, min(c.maxStmt+c.maxStmt/8, 1<<26))
			buf = append(buf, prefix...)
		} else {
			buf = append(buf, ',')
		}
		before := len(buf)
		buf = appendRow(buf, t.columns, vals)
		size += int64(len(buf) - before)
		if len(buf) >= c.maxStmt {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return n, size, flush()
}

// scanChunk reads a chunk's rows from the snapshot and hands each to row,
// whose values are valid only during the call.
func scanChunk(ctx context.Context, reader *sql.Conn, t *tableInfo, ch chunk, row func([]sql.RawBytes) error) (int64, error) {
	q := "SELECT " + t.selectList() + " FROM " + t.String()
	if ch.Where != "" {
		q += " WHERE " + ch.Where
	}
	rows, err := reader.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(t.columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		if err := row(vals); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

// writeChunk applies the statements in one transaction with the chunk's
// done mark. The counts are read after stmts is closed.
func (c *copier) writeChunk(ctx context.Context, ch chunk, rowCount, byteCount *int64, stmts <-chan []byte) error {
	conn, err := c.dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for stmt := range stmts {
		if _, err := tx.ExecContext(ctx, string(stmt)); err != nil {
			return fmt.Errorf("write chunk %d of `%s`.`%s` on the target: %w", ch.ID, ch.DB, ch.Table, err)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The reader has finished (stmts is closed), so the counts are final.
	// The mark carries the fence of cluster mode (fence.go).
	q, args := c.cp.fence.markSQL(ch.ID, *rowCount, *byteCount)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return c.cp.fence.explain(ctx, fmt.Sprintf("commit of chunk %d", ch.ID), err)
	}
	return tx.Commit()
}

// appendRow appends "(v1,v2,...)" with each value written so that the
// target stores exactly the bytes the source holds.
func appendRow(buf []byte, cols []column, vals []sql.RawBytes) []byte {
	buf = append(buf, '(')
	for i, v := range vals {
		if i > 0 {
			buf = append(buf, ',')
		}
		if v == nil {
			buf = append(buf, "NULL"...)
			continue
		}
		switch cols[i].kind {
		case kindExact, kindFloat:
			buf = append(buf, v...)
		case kindTemporal:
			buf = append(buf, '\'')
			buf = append(buf, v...)
			buf = append(buf, '\'')
		case kindBinary:
			buf = append(buf, "_binary'"...)
			buf = appendEscaped(buf, v)
			buf = append(buf, '\'')
		case kindText:
			buf = append(buf, '_')
			buf = append(buf, cols[i].charset...)
			buf = append(buf, '\'')
			buf = appendEscaped(buf, v)
			buf = append(buf, '\'')
		}
	}
	return append(buf, ')')
}

// appendEscaped escapes a string literal's bytes the way the server's lexer
// undoes it (the session's sql_mode leaves backslash escapes on). No byte of
// a valid multi-byte character is one of these, so any charset survives.
func appendEscaped(buf, v []byte) []byte {
	for _, b := range v {
		switch b {
		case 0:
			buf = append(buf, '\\', '0')
		case '\'':
			buf = append(buf, '\\', '\'')
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case 0x1a:
			buf = append(buf, '\\', 'Z')
		default:
			buf = append(buf, b)
		}
	}
	return buf
}
