package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// replicate runs the change stream until a Complete is carried out:
// restarts after failures from the last committed position, with a pause
// that grows, until the retry window passes without progress; the lag
// every second and status 8 by the ready-to-complete rule; Complete's
// stop position taken from the source when it arrives.
func (r *run) replicate(ctx context.Context) error {
	caughtUp := false
	onLag := func(l engine.Lag) {
		r.report.Lag(l.Seconds, l.Bytes)
		if !caughtUp && l.ReadyToComplete() {
			caughtUp = true
			// Everything the source had is applied: the sinker step is
			// done as far as it can be, and only Complete is left.
			r.report.Progress(bandReady, 100)
			r.report.CaughtUp()
		}
	}
	stream, err := r.m.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	r.report.StepStarted(StepSinker.ID)
	ctl := engine.NewStreamControl()

	// The lag and Complete are watched beside the stream, whatever its
	// restarts.
	wctx, cancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.watch(wctx, stream, ctl, onLag)
	}()
	defer func() { cancel(); <-watched }()

	policy := r.m.Retry()
	window := policy.For
	if window <= 0 {
		window = engine.DefaultRetryFor
	}
	// A run that went on this long before failing was healthy: its
	// failure starts a new episode of the retry window, even on a quiet
	// source whose position has not moved.
	healthy := min(10*time.Second, window/2)
	var failingSince time.Time
	var failingAt string
	// failures counts the restarts of this episode: the first is at once,
	// the later ones wait as the retry policy says.
	failures := 0
	for {
		started := time.Now()
		err := stream.Run(ctx, ctl)
		if err == nil {
			// The last word on the lag: what is left after Complete.
			cancel()
			<-watched
			if l, err := stream.Lag(ctx); err == nil {
				onLag(l)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perm *engine.PermanentError
		if errors.As(err, &perm) {
			return perm.Err
		}
		// Another node owns the job now: a restart would only be
		// refused again.
		if errors.Is(err, engine.ErrFenced) {
			return err
		}
		// The stream broke, or the target refused a group for a reason a
		// new connection may cure: start again from the last committed
		// position once both servers answer. Failures without progress
		// end the job after the retry window.
		at := stream.Applied().String()
		if failingSince.IsZero() || at != failingAt || time.Since(started) >= healthy {
			failingSince, failingAt, failures = time.Now(), at, 0
		} else if time.Since(failingSince) > window {
			return fmt.Errorf("the incremental phase made no progress for %s, still at %s: %w", window, at, err)
		}
		var pause time.Duration
		if failures > 0 {
			pause = engine.Pause(failures)
		}
		failures++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		if rerr := stream.Reconnect(ctx); rerr != nil {
			return fmt.Errorf("%w (after: %w)", rerr, err)
		}
		r.log.Warn("change stream restarted from the last applied transaction", "job_id", r.spec.JobID, "err", err, "at", stream.Applied().String())
	}
}

// watch reports the lag every second and turns a Complete into the
// stream's stop position: the source's position at the call (waitForSync)
// or the next transaction boundary (immediately).
func (r *run) watch(ctx context.Context, stream engine.ChangeStream, ctl *engine.StreamControl, onLag func(engine.Lag)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var mode string
	complete := r.complete
	for {
		if mode != "" && !ctl.StopRequested() {
			p, err := stream.SourcePosition(ctx)
			if err == nil {
				ctl.RequestStop(p, mode == engine.CompleteImmediately)
				r.log.Info("completing: applying up to the source's position at the call", "job_id", r.spec.JobID, "at", p.String(), "mode", mode)
				complete = nil
			} else if ctx.Err() == nil {
				r.log.Warn("cannot read the source's position to complete; trying again", "job_id", r.spec.JobID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case m := <-complete:
			if mode == "" {
				mode = m
			}
			continue
		case <-t.C:
		}
		if l, err := stream.Lag(ctx); err == nil {
			onLag(l)
		} else if ctx.Err() == nil {
			r.log.Warn("cannot measure the lag", "job_id", r.spec.JobID, "err", err)
		}
	}
}
