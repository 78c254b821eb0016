package mysql

import (
	"context"
	"database/sql/driver"
	"time"
)

// The applying side of the binlog path: source transactions join a group,
// a group goes to the target as one transaction while the next one fills,
// and a source transaction too big for a group goes in pieces.

// keepSaved writes the applied position, at most once a second, when it
// moved on without changes to apply (busy unselected tables): a restart
// then resumes near it, not from a binlog the source may have purged.
func (inc *incremental) keepSaved(ctx context.Context) error {
	if !inc.group.empty() || inc.inflight != nil || inc.txOpen {
		return nil
	}
	p := inc.appliedPos()
	inc.savedMu.Lock()
	due := p != inc.savedPos && time.Since(inc.savedAt) >= time.Second
	inc.savedMu.Unlock()
	if !due {
		return nil
	}
	if err := inc.m.cp.fence.savePosition(ctx, inc.m.dst, p); err != nil {
		return err
	}
	inc.saved(p)
	return nil
}

// A group is handed to the applier when it holds this many row changes or
// bytes of SQL, when it is older than groupMaxAge and the applier is free,
// or when the stream pauses for groupIdle. While the target is busy the
// group grows: catching up goes in big groups, a live stream in small ones.
const (
	groupMaxChanges = 20000
	groupMaxBytes   = 8 << 20
	groupMaxAge     = 20 * time.Millisecond
	groupIdle       = 5 * time.Millisecond
)

// commit adds one source transaction to the group and hands the group to
// the applier when it is big or old enough. A transaction that touched
// nothing selected only moves the position.
func (inc *incremental) commit(ctx context.Context, changes []rowChange, rows int64, next position) error {
	spilled := inc.openTxn
	inc.openTxn = false
	inc.addToGroup(changes, rows)
	inc.advance(next)
	if spilled {
		// The target transaction holding the earlier pieces commits now,
		// with the position, even when nothing selected is left to add.
		return inc.flush(ctx)
	}
	if err := inc.keepSaved(ctx); err != nil {
		return err
	}
	g := inc.group
	if g.changes >= groupMaxChanges || g.bytes >= groupMaxBytes {
		return inc.flush(ctx)
	}
	if !g.empty() && time.Since(g.started) >= groupMaxAge {
		busy, err := inc.busy()
		if err != nil {
			return err
		}
		if !busy {
			return inc.flush(ctx)
		}
	}
	return nil
}

// flush hands the group to the applier, after the group before it is
// applied: one group in flight at a time, so positions commit in order.
func (inc *incremental) flush(ctx context.Context) error {
	if err := inc.wait(); err != nil {
		return err
	}
	g := inc.group
	inc.group = newGroup()
	if g.hasEnd {
		inc.group.setEnd(g.end)
	}
	if g.open {
		// The rest of the source transaction is as old as its start.
		inc.group.since = g.since
	}
	if g.empty() && !inc.txOpen {
		if g.hasEnd {
			inc.setApplied(g.end)
		}
		return nil
	}
	if !g.open {
		// This group ends the target transaction a large source
		// transaction's pieces went into, if one is open.
		inc.txOpen = false
	}
	inc.inflightSince.Store(g.since)
	inc.groupSince.Store(inc.group.since)
	done := make(chan error, 1)
	inc.inflight = done
	go func() { done <- inc.applyGroup(inc.applyCtx, g) }()
	return nil
}

// addToGroup adds changes to the group; the first ones date it, for the
// lag.
func (inc *incremental) addToGroup(changes []rowChange, rows int64) {
	if len(changes) > 0 && inc.group.empty() && inc.group.since == 0 {
		inc.group.since = inc.lastEvent.Load()
		inc.groupSince.Store(inc.group.since)
	}
	inc.group.add(changes, rows)
}

// spill sends a piece of a source transaction that outgrew the group
// limits: the target transaction it goes into stays open, and the piece
// with the source transaction's commit ends it, with the position. Memory
// then holds at most the piece being read and the piece being applied,
// whatever the size of the source transaction, and a crash in between
// undoes the pieces: exactly once still holds. Before the first piece,
// the earlier transactions of the group are committed, so the open target
// transaction holds this source transaction alone and a ROLLBACK of it
// undoes exactly it.
func (inc *incremental) spill(ctx context.Context, changes []rowChange, rows int64) error {
	if !inc.openTxn {
		if err := inc.drain(ctx); err != nil {
			return err
		}
		inc.openTxn = true
		inc.m.e.cfg.Logger.Info("a large source transaction goes to the target in pieces", "job_id", inc.m.spec.JobID, "changes_so_far", len(changes))
	}
	inc.addToGroup(changes, rows)
	inc.group.open = true
	inc.txOpen = true
	return inc.flush(ctx)
}

// discardOpen undoes the pieces of a source transaction the source rolled
// back.
func (inc *incremental) discardOpen() error {
	if err := inc.wait(); err != nil {
		return err
	}
	if inc.openTxn {
		// Only this transaction is in the group (spill committed the
		// rest first).
		end, hasEnd := inc.group.end, inc.group.hasEnd
		inc.group = newGroup()
		if hasEnd {
			inc.group.setEnd(end)
		}
	}
	inc.abandonOpen()
	return nil
}

// abandonOpen rolls back the open target transaction of a large source
// transaction, if any.
func (inc *incremental) abandonOpen() {
	inc.openTxn, inc.txOpen = false, false
	if inc.txConn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = inc.txConn.ExecContext(ctx, "ROLLBACK")
	_ = inc.txConn.Raw(func(any) error { return driver.ErrBadConn })
	inc.txConn.Close()
	inc.txConn = nil
}

// unapplied reports whether something read is not applied yet.
func (inc *incremental) unapplied() bool {
	return !inc.group.empty() || inc.inflight != nil || inc.txOpen || (inc.group.hasEnd && inc.group.end != inc.appliedPos())
}

// drain applies everything read so far and waits for it.
func (inc *incremental) drain(ctx context.Context) error {
	if err := inc.flush(ctx); err != nil {
		return err
	}
	return inc.wait()
}

// wait waits for the group in flight.
func (inc *incremental) wait() error {
	if inc.inflight == nil {
		return nil
	}
	err := <-inc.inflight
	inc.inflight = nil
	return err
}

// busy reports whether a group is still being applied, and the error of
// one that failed.
func (inc *incremental) busy() (bool, error) {
	if inc.inflight == nil {
		return false, nil
	}
	select {
	case err := <-inc.inflight:
		inc.inflight = nil
		return false, err
	default:
		return true, nil
	}
}
