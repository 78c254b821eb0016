package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// A small table's rows take less time to move than the statements around
// them: a chunk of its own costs a pooled connection, a transaction, a
// load, a done mark and a commit, five round trips to the target for three
// rows. Small whole-table chunks are therefore copied in batches: one
// target transaction writes several tables, an INSERT each, and marks them
// all done with one statement, so that a small table costs about one round
// trip on each side. A batch commits or fails as a unit, and resuming
// after it works as for a chunk: its marks are in its transaction.

const (
	// batchChunks bounds the chunks in one batch: a failure redoes the
	// batch, and one transaction should stay short.
	batchChunks = 64
	// batchRows bounds a batch's estimated rows; a chunk of more rows is
	// copied on its own, streamed through LOAD DATA or INSERTs.
	batchRows = 2_000
)

// batches groups chunks in the order given: consecutive small whole-table
// chunks go together, any other chunk alone.
func batches(chunks []chunk) [][]chunk {
	var out [][]chunk
	var cur []chunk
	var rows int64
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur, rows = nil, 0
		}
	}
	for _, ch := range chunks {
		if ch.Where != "" || ch.EstRows > batchRows {
			flush()
			out = append(out, []chunk{ch})
			continue
		}
		if len(cur) == batchChunks || rows+ch.EstRows > batchRows {
			flush()
		}
		cur = append(cur, ch)
		rows += max(ch.EstRows, 1)
	}
	flush()
	return out
}

// copyBatchWithRetry copies a batch of small chunks in one target
// transaction, starting over on a new connection when one side drops. It
// returns each chunk's rows committed.
func (c *copier) copyBatchWithRetry(ctx context.Context, worker int, batch []chunk) (committed []int64, err error) {
	tables := make([]*tableInfo, len(batch))
	for i, ch := range batch {
		t := c.tables[tableID(ch.DB, ch.Table)]
		if t == nil {
			return nil, fmt.Errorf("chunk %d belongs to %s.%s, which is no longer on the source", ch.ID, quoteIdent(ch.DB), quoteIdent(ch.Table))
		}
		tables[i] = t
	}
	committed = make([]int64, len(batch))
	attempt := 0
	err = c.e.retry(ctx, fmt.Sprintf("copy chunks %d-%d (%d small tables)", batch[0].ID, batch[len(batch)-1].ID, len(batch)), func() error {
		attempt++
		if attempt > 1 {
			// The last attempt's commit may have landed with its answer
			// lost: its marks commit together, so finding them tells.
			landed, err := c.landed(ctx, batch)
			if err != nil {
				return err
			}
			if landed != nil {
				for i, ch := range batch {
					committed[i] = landed[ch.ID]
					c.rows.Add(committed[i])
				}
				return nil
			}
		}
		c.freshReader(worker, len(batch))
		if c.snap.readers[worker] == nil {
			r, err := openReader(ctx, c.src)
			if err != nil {
				return err
			}
			c.e.cfg.Logger.Warn("a source reader was reconnected: its chunks come from a later snapshot than the others", "worker", worker)
			c.snap.readers[worker] = r
		}
		counts, err := c.copyBatch(ctx, c.snap.readers[worker], tables, batch)
		if err != nil {
			var re *readError
			if errors.As(err, &re) && retryable(err) {
				closeReader(c.snap.readers[worker])
				c.snap.readers[worker] = nil
			}
			return err
		}
		var rows, bytes int64
		for i, n := range counts {
			committed[i] = n[0]
			rows += n[0]
			bytes += n[1]
		}
		c.rows.Add(rows)
		c.bytes.Add(bytes)
		c.e.cfg.Counters.CopiedRows(c.cp.jobID, rows, bytes)
		return nil
	})
	return committed, err
}

// landed reads the done marks of a batch: nil when it did not commit,
// else each chunk's rows by chunk ID.
func (c *copier) landed(ctx context.Context, batch []chunk) (map[int]int64, error) {
	ids := make([]any, 0, len(batch)+1)
	ids = append(ids, c.cp.jobID)
	for _, ch := range batch {
		ids = append(ids, ch.ID)
	}
	rows, err := c.dst.QueryContext(ctx, "SELECT chunk_id, row_count FROM `"+checkpointDB+"`.`migrate_chunks` WHERE job_id = ? AND chunk_id IN ("+placeholders(len(batch))+")", ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out map[int]int64
	for rows.Next() {
		var id int
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[int]int64{}
		}
		out[id] = n
	}
	return out, rows.Err()
}

// copyBatch writes each table of the batch as INSERT statements of at
// most c.maxStmt bytes, sent as they fill (a table larger than its
// estimate still streams), then the batch's done marks, in one
// transaction. It returns each chunk's rows and bytes.
func (c *copier) copyBatch(ctx context.Context, reader *sql.Conn, tables []*tableInfo, batch []chunk) ([][2]int64, error) {
	conn, err := c.dst.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	counts := make([][2]int64, len(batch))
	var buf []byte
	for i, ch := range batch {
		t := tables[i]
		prefix := t.insertPrefix()
		var writeErr error
		write := func() error {
			if _, err := tx.ExecContext(ctx, string(buf)); err != nil {
				writeErr = fmt.Errorf("write chunk %d of `%s`.`%s` on the target: %w", ch.ID, ch.DB, ch.Table, err)
				return writeErr
			}
			buf = buf[:0]
			return nil
		}
		buf = buf[:0]
		n, err := scanChunk(ctx, reader, t, ch, func(vals []sql.RawBytes) error {
			if len(buf) == 0 {
				buf = append(buf, prefix...)
			} else {
				buf = append(buf, ',')
			}
			before := len(buf)
			buf = appendRow(buf, t.columns, vals)
			counts[i][1] += int64(len(buf) - before)
			if len(buf) >= c.maxStmt {
				return write()
			}
			return nil
		})
		if writeErr != nil {
			return nil, writeErr
		}
		if err != nil {
			return nil, &readError{err}
		}
		counts[i][0] = n
		if len(buf) > 0 {
			if err := write(); err != nil {
				return nil, err
			}
		}
	}
	marks := make([]string, len(batch))
	params := make([]any, 0, 4*len(batch))
	for i, ch := range batch {
		marks[i] = "(?, ?, ?, ?)"
		params = append(params, c.cp.jobID, ch.ID, counts[i][0], counts[i][1])
	}
	q := strings.TrimSuffix(markChunkSQL, "(?, ?, ?, ?)") + strings.Join(marks, ", ")
	if _, err := tx.ExecContext(ctx, q, params...); err != nil {
		return nil, err
	}
	// A multi-row mark cannot carry the fence the way one chunk's does (a
	// NULL there is not an error): one locking read of it, last.
	if err := c.cp.fence.check(ctx, tx, fmt.Sprintf("commit of chunks %d-%d", batch[0].ID, batch[len(batch)-1].ID)); err != nil {
		return nil, err
	}
	return counts, tx.Commit()
}

// A snapshot reader's transaction keeps a metadata lock on every table it
// has read until it ends, and MariaDB's cost of opening one more table
// grows with the locks the transaction holds: reading 8,000 small tables
// in one transaction took 0.35 ms a table for the first thousand and 6 ms
// a table for the last. A reader therefore reads at most readerTables
// small tables; the snapshot opens spare readers at the same moment as
// the others, and a worker whose reader is full takes a spare one.
var readerTables = 500 // a variable for the tests

// maxSpareReaders bounds the source connections a snapshot holds open;
// beyond it, readers read more tables each.
const maxSpareReaders = 60

// spareReaders is how many readers beyond the workers' the snapshot of
// tables needs.
func spareReaders(tables []*tableInfo, workers int) int {
	small := 0
	for _, t := range tables {
		if t.estRows <= batchRows {
			small++
		}
	}
	need := (small+readerTables-1)/readerTables - workers
	return max(0, min(need, maxSpareReaders))
}

// freshReader gives worker a spare reader once its own has read
// readerTables tables (or would with n more); the full one is closed,
// ending its transaction and its locks.
func (c *copier) freshReader(worker, n int) {
	if c.readTables == nil || c.readTables[worker]+n <= readerTables {
		if c.readTables != nil {
			c.readTables[worker] += n
		}
		return
	}
	c.snap.spareMu.Lock()
	var r *sql.Conn
	if len(c.snap.spare) > 0 {
		r, c.snap.spare = c.snap.spare[0], c.snap.spare[1:]
	}
	c.snap.spareMu.Unlock()
	if r == nil {
		c.readTables[worker] += n
		return
	}
	closeReader(c.snap.readers[worker])
	c.snap.readers[worker] = r
	c.readTables[worker] = n
}
