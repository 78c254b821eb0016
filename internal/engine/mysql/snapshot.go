package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// snapshot is a set of source connections that all see the same moment:
// each holds a REPEATABLE READ transaction opened while writes were held
// off, so every chunk, whichever worker reads it, comes from one state of
// the database.
type snapshot struct {
	readers []*sql.Conn
	// spare readers see the same moment and wait for a worker whose
	// reader has read many tables (copy_batch.go).
	spareMu sync.Mutex
	spare   []*sql.Conn
	pos     *position
	// lockHeld is how long writes were blocked on the source.
	lockHeld time.Duration
}

func (s *snapshot) close() {
	for _, c := range s.readers {
		closeReader(c)
	}
	for _, c := range s.spare {
		closeReader(c)
	}
}

// closeReader ends a reader's snapshot transaction before its connection
// goes back to the pool: an open transaction would keep its metadata locks
// and block every DDL on the tables it read.
func closeReader(c *sql.Conn) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.ExecContext(ctx, "ROLLBACK")
	c.Close()
}

// takeSnapshot opens n readers at one consistent point. Writes are held by
// FLUSH TABLES WITH READ LOCK (RELOAD privilege), or by LOCK TABLES ... READ
// on the copied tables when FTWRL is not allowed, only while the readers
// start their transactions and the binlog position is read: milliseconds
// unless a long query holds the lock up (then it gives up after 60 s
// rather than stall the source's writers).
func takeSnapshot(ctx context.Context, src *sql.DB, n int, tables []*tableInfo) (*snapshot, error) {
	lockConn, err := src.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the snapshot connection: %w", err)
	}
	defer lockConn.Close()
	if _, err := lockConn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 60"); err != nil {
		return nil, fmt.Errorf("prepare the snapshot: %w", err)
	}
	// The readers' connections are opened before writes are held and
	// wait in the pool: under the lock only their transactions start
	// (with spare readers, forty connections took 140 ms to open).
	warm := make([]*sql.Conn, 0, n)
	for range n {
		c, err := src.Conn(ctx)
		if err != nil {
			break // openReader below says why
		}
		warm = append(warm, c)
	}
	for _, c := range warm {
		c.Close()
	}
	snap := &snapshot{}
	start := time.Now()
	_, err = lockConn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK")
	if err != nil {
		var myErr *mysql.MySQLError
		if !errors.As(err, &myErr) || (myErr.Number != 1227 && myErr.Number != 1045) {
			return nil, fmt.Errorf("hold writes for the snapshot (FLUSH TABLES WITH READ LOCK): %w", err)
		}
		// No RELOAD: lock just the tables copied.
		if len(tables) > 0 {
			parts := make([]string, len(tables))
			for i, t := range tables {
				parts[i] = t.String() + " READ"
			}
			if _, err := lockConn.ExecContext(ctx, "LOCK TABLES "+strings.Join(parts, ", ")); err != nil {
				return nil, fmt.Errorf("hold writes for the snapshot (neither FLUSH TABLES WITH READ LOCK nor LOCK TABLES is allowed; grant RELOAD or LOCK TABLES): %w", err)
			}
		}
	}
	unlock := func() {
		_, _ = lockConn.ExecContext(context.Background(), "UNLOCK TABLES")
		snap.lockHeld = time.Since(start)
	}
	for i := 0; i < n; i++ {
		c, err := openReader(ctx, src)
		if err != nil {
			unlock()
			snap.close()
			return nil, err
		}
		snap.readers = append(snap.readers, c)
	}
	snap.pos = readPosition(ctx, lockConn)
	unlock()
	return snap, nil
}

// openReader starts a connection's consistent-snapshot transaction. Its
// results come back in each column's own charset, unconverted.
func openReader(ctx context.Context, src *sql.DB) (*sql.Conn, error) {
	c, err := src.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a source reader: %w", err)
	}
	for _, q := range []string{
		"SET NAMES utf8mb4",
		"SET SESSION character_set_results = NULL",
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return nil, fmt.Errorf("start a source reader (%s): %w", q, err)
		}
	}
	return c, nil
}

// readPosition reads the binlog position while writes are held; a source
// without a binlog or without the privilege to show it gives nil (a full
// migration does not need it).
func readPosition(ctx context.Context, c *sql.Conn) *position {
	bp, ok, err := showMasterStatus(ctx, c)
	if err != nil || !ok {
		return nil
	}
	p := &position{File: bp.File, Pos: bp.Pos}
	var gtid sql.NullString
	if c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_current_pos").Scan(&gtid) == nil {
		p.GTID = gtid.String
	} else if c.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&gtid) == nil {
		p.GTID = gtid.String
	}
	return p
}

// chunk is a part of a table copied, committed and resumed as a unit.
type chunk struct {
	ID    int
	DB    string
	Table string
	// Where selects the chunk's rows ("" for the whole table).
	Where   string
	EstRows int64
}

// planTable splits a table into chunks of about chunkRows rows. A table
// whose key starts with an integer column is cut into ranges of that
// column, which partition it whatever the data; other tables are one chunk.
func planTable(ctx context.Context, q queryer, t *tableInfo, chunkRows int64, nextID int) ([]chunk, error) {
	one := []chunk{{ID: nextID, DB: t.db, Table: t.name, EstRows: t.estRows}}
	if !t.intKey || t.estRows <= chunkRows {
		return one, nil
	}
	k := quoteIdent(t.key[0])
	var lo, hi sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT MIN("+k+"), MAX("+k+") FROM "+t.String()).Scan(&lo, &hi); err != nil {
		return nil, fmt.Errorf("find the key range of %s: %w", t, err)
	}
	if !lo.Valid || !hi.Valid {
		return one, nil
	}
	min, ok1 := new(big.Int).SetString(lo.String, 10)
	max, ok2 := new(big.Int).SetString(hi.String, 10)
	if !ok1 || !ok2 {
		return one, nil
	}
	span := new(big.Int).Sub(max, min)
	span.Add(span, big.NewInt(1))
	n := (t.estRows + chunkRows - 1) / chunkRows
	if span.Cmp(big.NewInt(n)) < 0 {
		n = span.Int64()
	}
	if n <= 1 {
		return one, nil
	}
	bounds := make([]string, n-1)
	for i := int64(1); i < n; i++ {
		b := new(big.Int).Mul(span, big.NewInt(i))
		b.Quo(b, big.NewInt(n))
		b.Add(b, min)
		bounds[i-1] = b.String()
	}
	out := make([]chunk, 0, n)
	for i := int64(0); i < n; i++ {
		var where string
		switch {
		case i == 0:
			where = k + " < " + bounds[0]
		case i == n-1:
			where = k + " >= " + bounds[n-2]
		default:
			where = k + " >= " + bounds[i-1] + " AND " + k + " < " + bounds[i]
		}
		out = append(out, chunk{ID: nextID + int(i), DB: t.db, Table: t.name, Where: where, EstRows: t.estRows / n})
	}
	return out, nil
}
