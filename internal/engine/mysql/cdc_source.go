package mysql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// What the binlog path asks of the source: which binlog files it still
// has, its current position, and the lag measured against it.

// binlogStillThere fails, with advice, when the source has purged the
// binlog file the job must read next: going on would skip changes.
func (m *migration) binlogStillThere(ctx context.Context, p position) error {
	files, err := binaryLogs(ctx, m.src)
	if err != nil || len(files) == 0 {
		return nil // the stream will report the connection problem
	}
	for _, f := range files {
		if f.name == p.File {
			return nil
		}
	}
	return fmt.Errorf("the source no longer has the binlog file %s this job must read next (its oldest is %s): it was purged, and the changes in it are lost to this job. Raise binlog_expire_logs_seconds / expire_logs_days on the source so binlogs outlive a stop of opendts, then start the job again from scratch (ModifyMigrateJob, CreateMigrateCheckJob, StartMigrateJob)", p.File, files[0].name)
}

// binlogFile is a line of SHOW BINARY LOGS.
type binlogFile struct {
	name string
	size int64
}

// binaryLogs lists the source's binlog files, oldest first.
func binaryLogs(ctx context.Context, q queryer) ([]binlogFile, error) {
	rows, err := q.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []binlogFile
	for rows.Next() {
		var f binlogFile
		vals := []any{&f.name, &f.size}
		for i := 2; i < len(cols); i++ {
			vals = append(vals, new(any))
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// showMasterStatus reads the server's current binlog file and position;
// ok is false when it has no binlog.
func showMasterStatus(ctx context.Context, q queryer) (p position, ok bool, err error) {
	rows, err := q.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		// MySQL 8.4 renamed it.
		var err2 error
		if rows, err2 = q.QueryContext(ctx, "SHOW BINARY LOG STATUS"); err2 != nil {
			return p, false, fmt.Errorf("read the source's binlog position: %w", err)
		}
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return p, false, rows.Err()
	}
	vals := []any{&p.File, &p.Pos}
	for i := 2; i < len(cols); i++ {
		vals = append(vals, new(any))
	}
	if err := rows.Scan(vals...); err != nil {
		return p, false, err
	}
	return p, true, nil
}

// masterPos is the source's current binlog position.
func (m *migration) masterPos(ctx context.Context) (position, error) {
	p, ok, err := showMasterStatus(ctx, m.src)
	if err == nil && !ok {
		err = errors.New("the source has no binlog (SHOW MASTER STATUS is empty)")
	}
	return p, err
}

// Lag measures the distance from the source: the binlog not applied, and
// the age of the oldest transaction read and not applied (or of the last
// event read, when everything read is applied).
func (inc *incremental) Lag(ctx context.Context) (engine.Lag, error) {
	m := inc.m
	master, err := m.masterPos(ctx)
	if err != nil {
		return engine.Lag{}, err
	}
	applied := inc.appliedPos()
	var bytes int64
	if master.File == applied.File {
		bytes = int64(master.Pos) - int64(applied.Pos)
	} else {
		if bytes, err = m.binlogBytesBetween(ctx, applied, master); err != nil {
			// Not 0: a lag that cannot be measured must not read as none.
			return engine.Lag{}, err
		}
	}
	l := engine.Lag{Bytes: max(bytes, 0)}
	l.Known = l.Bytes == 0
	if l.Bytes > 0 {
		oldest := inc.inflightSince.Load()
		if oldest == 0 {
			oldest = inc.groupSince.Load()
		}
		if oldest == 0 {
			// All read is applied: what is behind is not read yet.
			oldest = inc.lastEvent.Load()
		}
		if oldest > 0 {
			l.Seconds = max(time.Now().Unix()-oldest, 0)
			l.Known = true
		}
	}
	return l, nil
}

// binlogBytesBetween sums the binlog between two positions in different
// files.
func (m *migration) binlogBytesBetween(ctx context.Context, from, to position) (int64, error) {
	files, err := binaryLogs(ctx, m.src)
	if err != nil {
		return 0, fmt.Errorf("read the source's binlog files for the lag: %w", err)
	}
	var total int64
	for _, f := range files {
		switch {
		case compareFiles(f.name, from.File) < 0 || compareFiles(f.name, to.File) > 0:
		case f.name == from.File:
			total += f.size - int64(from.Pos)
		case f.name == to.File:
			total += int64(to.Pos)
		default:
			total += f.size
		}
	}
	return total, nil
}
