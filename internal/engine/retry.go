package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// RetryPolicy is how every family rides out a dropped connection or a
// restarting server: attempts with a pause that doubles from a second up
// to 15 s, until For has passed without success; then the job fails.
type RetryPolicy struct {
	For    time.Duration
	Logger *slog.Logger
}

// DefaultRetryFor is the retry window when none is configured.
const DefaultRetryFor = 2 * time.Minute

// Pause is the wait before attempt n (1-based) of a retry.
func Pause(attempt int) time.Duration {
	wait := time.Second
	for i := 1; i < attempt && wait < 15*time.Second; i++ {
		wait *= 2
	}
	return min(wait, 15*time.Second)
}

// Do runs fn until it succeeds, fails with an error retryable does not
// accept, ctx ends, or the window passes.
func (p RetryPolicy) Do(ctx context.Context, what string, retryable func(error) bool, fn func() error) error {
	window := p.For
	if window <= 0 {
		window = DefaultRetryFor
	}
	deadline := time.Now().Add(window)
	for attempt := 1; ; attempt++ {
		err := fn()
		// A fenced run (ErrFenced) lost the job to another node: no
		// attempt can cure that.
		if err == nil || errors.Is(err, ErrFenced) || !retryable(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
		wait := Pause(attempt)
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: still failing after %d attempts over %s: %w", what, attempt, window, err)
		}
		if p.Logger != nil {
			p.Logger.Warn("retrying", "what", what, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// PermanentError is a failure that no retry cures (the target refused a
// change, a binlog was purged): the driver fails the job at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as one no retry cures.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{err}
}
