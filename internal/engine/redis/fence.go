package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// The fence of cluster mode (engine.Spec.Epoch). The job's epoch is a
// string key beside its checkpoint hash (the same hash tag, so the same
// slot of a cluster target). A run records it when it opens, refusing to
// open under a newer one, with a WATCHed compare-and-set. Writes of the
// checkpoint hash WATCH the fence key, read it and commit in MULTI/EXEC,
// so EXEC aborts when a newer owner's claim changed the key meanwhile.
//
// The change stream into a standalone target keeps its one round trip per
// transaction: the WATCH and GET of the fence ride at the end of the
// previous transaction's pipeline, so the epoch read there (while the
// WATCH stays armed) is checked before the next MULTI is sent, and a
// claim landing in between aborts that EXEC. The per-slot transactions of
// a cluster target cannot WATCH a key of another slot: only the floor
// checkpoint written after each batch is fenced there, and the copy's
// RESTORE pipelines are not transactions: the epoch is read before the
// copy, once a second while it writes, and at its checkpoints (README, How a Redis migration works). Epoch 0 (a
// single node) has no fence: no key, no command.
func fenceKey(jobID string) string { return "opendts:{" + jobID + "}:fence" }

// fencedError is a commit (or an open) refused because another run of the
// job holds a newer epoch. It wraps engine.ErrFenced.
type fencedError struct {
	jobID        string
	theirs, ours int64
	// op is "commit" or "open"; what says which write was refused.
	op, what string
}

func (e *fencedError) Error() string {
	return fmt.Sprintf("%s refused: job %s is now owned by epoch %d (this run has epoch %d; %s): %v",
		e.op, e.jobID, e.theirs, e.ours, e.what, engine.ErrFenced)
}

func (e *fencedError) Unwrap() error { return engine.ErrFenced }

// fence is one run's epoch.
type fence struct {
	jobID  string
	key    string
	epoch  int64
	log    *slog.Logger
	logged sync.Once
}

func (f *fence) on() bool { return f != nil && f.epoch > 0 }

// refused returns the error of a refused write, logging the run's first
// at warn level.
func (f *fence) refused(op, what string, theirs int64) error {
	err := &fencedError{jobID: f.jobID, theirs: theirs, ours: f.epoch, op: op, what: what}
	f.logged.Do(func() {
		f.log.Warn("fenced: "+err.Error(), "job_id", f.jobID, "epoch", f.epoch, "owner_epoch", theirs)
	})
	return err
}

// read returns the recorded epoch (0 when there is none).
func readEpoch(ctx context.Context, c goredis.Cmdable, key string) (int64, error) {
	v, err := c.Get(ctx, key).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return v, err
}

// claim records the run's epoch, refusing when a newer one is there.
func (f *fence) claim(ctx context.Context, c goredis.UniversalClient) error {
	if !f.on() {
		return nil
	}
	for range 20 {
		err := c.Watch(ctx, func(tx *goredis.Tx) error {
			theirs, err := readEpoch(ctx, tx, f.key)
			if err != nil {
				return err
			}
			if theirs > f.epoch {
				return f.refused("open", "the run's start", theirs)
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.Set(ctx, f.key, f.epoch, 0)
				return nil
			})
			return err
		}, f.key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue // another claim at the same moment: read again
		}
		if err != nil && !errors.Is(err, engine.ErrFenced) {
			return fmt.Errorf("record the run's epoch %d on the target: %w", f.epoch, err)
		}
		return err
	}
	return fmt.Errorf("record the run's epoch %d on the target: the fence key kept changing", f.epoch)
}

// check reads the fence before a write that cannot share a transaction
// with it (the copy's RESTOREs, dropping slot checkpoints).
func (f *fence) check(ctx context.Context, c goredis.Cmdable, what string) error {
	if !f.on() {
		return nil
	}
	theirs, err := readEpoch(ctx, c, f.key)
	if err != nil {
		return fmt.Errorf("read the job's fence on the target: %w", err)
	}
	if theirs != f.epoch {
		return f.refused("commit", what, theirs)
	}
	return nil
}

// write runs fn's commands in a MULTI/EXEC that commits only while the
// fence holds the run's epoch.
func (f *fence) write(ctx context.Context, c goredis.UniversalClient, what string, fn func(p goredis.Pipeliner)) error {
	for range 20 {
		err := c.Watch(ctx, func(tx *goredis.Tx) error {
			theirs, err := readEpoch(ctx, tx, f.key)
			if err != nil {
				return err
			}
			if theirs != f.epoch {
				return f.refused("commit", what, theirs)
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				fn(p)
				return nil
			})
			return err
		}, f.key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue // the fence key changed: read it again
		}
		return err
	}
	return fmt.Errorf("%s: the fence key kept changing", what)
}

// The stream's fence on its own connection (stream.go): armed after a
// WATCH and GET of the fence key whose reply showed the run's epoch.
type streamFence struct {
	f     *fence
	armed bool
	// seen is the epoch the last GET returned.
	seen int64
}

// writeArm queues WATCH and GET of the fence key (outside any MULTI).
func (sf *streamFence) writeArm(tc *conn) {
	tc.writeCmd("WATCH", sf.f.key)
	tc.writeCmd("GET", sf.f.key)
}

// readArm reads the replies of writeArm.
func (sf *streamFence) readArm(tc *conn) error {
	if _, err := tc.reply(); err != nil {
		return fmt.Errorf("WATCH on the target: %w", err)
	}
	v, err := tc.reply()
	if err != nil {
		return fmt.Errorf("read the job's fence on the target: %w", err)
	}
	sf.seen = 0
	if b, ok := v.([]byte); ok {
		sf.seen, _ = strconv.ParseInt(string(b), 10, 64)
	}
	sf.armed = sf.seen == sf.f.epoch
	return nil
}

// ready arms the fence when it is not, with a round trip of its own (the
// first transaction of a run), and refuses when the epoch seen is not the
// run's.
func (sf *streamFence) ready(tc *conn, what string) error {
	if !sf.armed && sf.seen == 0 {
		sf.writeArm(tc)
		if err := tc.flush(); err != nil {
			return fmt.Errorf("write to the target: %w", err)
		}
		if err := sf.readArm(tc); err != nil {
			return err
		}
	}
	if !sf.armed {
		return engine.Permanent(sf.f.refused("commit", what, sf.seen))
	}
	return nil
}

// flushes reports whether a batch empties database 0, which holds the
// fence key: the transaction writes the key again.
func flushes(cmds []tcmd) bool {
	for _, c := range cmds {
		if len(c.args) > 0 && (c.db == 0 && strings.EqualFold(string(c.args[0]), "FLUSHDB") || strings.EqualFold(string(c.args[0]), "FLUSHALL")) {
			return true
		}
	}
	return false
}
