package engine

import (
	"context"
	"sync"
)

// Position is a place in a source's change stream (a binlog coordinate,
// an LSN, a replication offset), of one family and one source.
type Position interface {
	// Before reports whether the position comes before other.
	Before(other Position) bool
	String() string
}

// Lag is how far a change stream is behind its source.
type Lag struct {
	// Seconds since the oldest change read and not applied, or not read
	// yet; Bytes of the source's stream not applied.
	Seconds, Bytes int64
	// Known says Seconds is measured: nothing is left, or the age of what
	// is left is known from a change read.
	Known bool
}

// Ready-to-complete: a full + incremental job reaches status 8 when its
// lag is known and at most ReadySeconds, with less than ReadyBytes of the
// source's stream left (a busy source writes megabytes a second, so the
// bytes only guard against a backlog whose age the changes read so far do
// not show yet).
const (
	ReadySeconds = 1
	ReadyBytes   = 16 << 20
)

// ReadyToComplete applies the ready-to-complete rule.
func (l Lag) ReadyToComplete() bool {
	return l.Known && l.Seconds <= ReadySeconds && l.Bytes < ReadyBytes
}

// StreamControl is what the driver tells a running change stream: where
// CompleteMigrateJob asked it to stop. It outlives a stream's restarts.
type StreamControl struct {
	mu          sync.Mutex
	stopAt      Position
	immediately bool
}

// NewStreamControl returns a control with no stop requested.
func NewStreamControl() *StreamControl { return &StreamControl{} }

// RequestStop records a Complete: apply up to at (the source's position at
// the call), or with immediately stop at the next transaction boundary.
func (c *StreamControl) RequestStop(at Position, immediately bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopAt, c.immediately = at, immediately
}

// StopRequested reports whether a Complete is being carried out.
func (c *StreamControl) StopRequested() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopAt != nil
}

// ShouldStop is asked by the stream at each transaction boundary, with
// the position everything read so far reaches once applied: the stream
// applies what it read and returns nil when it says yes.
func (c *StreamControl) ShouldStop(reached Position) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopAt == nil {
		return false
	}
	return c.immediately || !reached.Before(c.stopAt)
}

// ChangeStream is the incremental phase of a family: its change reader
// and applier, run by the driver, which restarts it after failures.
type ChangeStream interface {
	// Run reads the source's changes from the last position committed on
	// the target and applies them, until ctl says stop (it returns nil
	// with everything up to there applied) or it fails. A failure that
	// no restart cures is a PermanentError; others make the driver call
	// Run again, after Reconnect, from the last committed position.
	Run(ctx context.Context, ctl *StreamControl) error
	// Applied is the position committed on the target (or reached by
	// events that change nothing selected).
	Applied() Position
	// SourcePosition is the source's position now, for Complete.
	SourcePosition(ctx context.Context) (Position, error)
	// Lag measures the distance from the source.
	Lag(ctx context.Context) (Lag, error)
	// Reconnect waits until both servers answer again (within the retry
	// policy), after a failure of Run.
	Reconnect(ctx context.Context) error
	// Close releases what the stream holds.
	Close()
}
