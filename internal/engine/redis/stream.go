package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// fieldDB is the source's selected database at the offset applied: the
// stream names a database only when it changes, so a resumed stream needs
// it.
const fieldDB = "db"

// shard is the incremental phase of one source master: its command
// stream applied to the target in transactions that carry the checkpoint
// of that shard (fields with its suffix).
type shard struct {
	m      *migration
	src    engine.Endpoint
	client *goredis.Client
	suffix string
	// multi: one of several shards; a full resync, which empties the
	// target, is not possible for one of them alone.
	multi bool

	mu      sync.Mutex
	applied position
	db      int
	// readAt is when the oldest command read and not yet applied arrived.
	readAt  time.Time
	samples []sample
	lastLag time.Time
}

type sample struct {
	offset int64
	at     time.Time
}

func (s *shard) Applied() engine.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func (s *shard) position() (position, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, s.db
}

// SourcePosition is the source's replication offset now.
func (s *shard) SourcePosition(ctx context.Context) (engine.Position, error) {
	in, err := info(ctx, s.client, "replication")
	if err != nil {
		return nil, err
	}
	off, err := strconv.ParseInt(in["master_repl_offset"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("the source's INFO has no master_repl_offset")
	}
	return position{in["master_replid"], off}, nil
}

// Lag: bytes of the source's stream not applied, and the age of the
// oldest of them: since it was read, or since the source's offset was
// first seen beyond what is applied.
func (s *shard) Lag(ctx context.Context) (engine.Lag, error) {
	p, err := s.SourcePosition(ctx)
	if err != nil {
		return engine.Lag{}, err
	}
	src := p.(position).offset
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.lastLag
	s.lastLag = now
	behind := src - s.applied.offset
	if behind <= 0 {
		s.samples = s.samples[:0]
		return engine.Lag{Known: true}, nil
	}
	s.samples = append(s.samples, sample{src, now})
	i := 0
	for i < len(s.samples)-1 && s.samples[i].offset <= s.applied.offset {
		i++
	}
	s.samples = s.samples[i:]
	var age time.Duration
	known := false
	if oldest := s.samples[0]; oldest.at.Before(now) {
		// Beyond what is applied already at an earlier call.
		age, known = now.Sub(oldest.at), true
	} else if !prev.IsZero() {
		// What is left was written after the previous call, which saw
		// everything before it applied: less than a call ago.
		known = true
	}
	if !s.readAt.IsZero() {
		age, known = max(age, now.Sub(s.readAt)), true
	}
	return engine.Lag{Seconds: int64(age / time.Second), Bytes: behind, Known: known}, nil
}

// tcmd is a command for the target, in the source database it ran in.
type tcmd struct {
	db   int
	args [][]byte
	// offset is where the command ends in the source's stream.
	offset int64
}

// Run resumes the replication from the applied position and applies the
// stream until ctl says stop.
func (s *shard) Run(ctx context.Context, ctl *engine.StreamControl) error {
	m := s.m
	var r *replica
	for {
		pos, _ := s.position()
		var err error
		r, _, err = openReplica(ctx, s.src, m.e.cfg.Timeout, pos.replid, pos.offset)
		if errors.Is(err, errBacklogLost) && s.multi {
			return engine.Permanent(fmt.Errorf("the source master %s no longer holds the replication position opendts reached (%s): raise ReplBacklogSize and start the job again", s.src.Address(), pos))
		}
		if errors.Is(err, errBacklogLost) {
			// The source no longer has what follows: start over from a
			// new RDB on emptied databases, as a new replica would.
			m.log.Warn("the source cannot continue the replication from the saved position; taking a full resync", "job_id", m.spec.JobID, "at", pos.String())
			np, err := m.fullSync(ctx, s.src, s.suffix, nil, true)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.applied, s.db = np, 0
			s.mu.Unlock()
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	defer r.Close()
	tc, err := dial(ctx, m.spec.Target, m.e.cfg.DialTimeout)
	if err != nil {
		return err
	}
	defer tc.Close()
	var ca *clusterApplier
	if m.dstCluster {
		if ca, err = m.newClusterApplier(ctx, s.suffix); err != nil {
			return err
		}
		defer ca.close()
	}
	// The connection belongs to this run: closing it ends a blocked read
	// when ctx ends.
	stop := context.AfterFunc(ctx, func() { r.Close(); tc.Close() })
	defer stop()

	ackDone := make(chan struct{})
	defer close(ackDone)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ackDone:
				return
			case <-t.C:
				p, _ := s.position()
				if r.ack(p.offset) != nil {
					return
				}
			}
		}
	}()

	// The fence of cluster mode rides on this connection (fence.go).
	var sf *streamFence
	if m.fence.on() && ca == nil {
		sf = &streamFence{f: m.fence}
	}
	pos, db := s.position()
	// After a failover the source may continue under a new replication
	// id (psync2): positions from here on carry it.
	pos.replid = r.replid
	var batch []tcmd
	size, inTx := 0, false
	var firstRead time.Time
	apply := func(to position) error {
		var err error
		if ca != nil {
			err = ca.apply(ctx, batch, to)
		} else {
			err = s.apply(tc, sf, batch, to, db)
		}
		if err != nil {
			return err
		}
		batch, size, firstRead = batch[:0], 0, time.Time{}
		s.mu.Lock()
		s.applied, s.db, s.readAt = to, db, time.Time{}
		s.mu.Unlock()
		return nil
	}
	last := pos
	for {
		if !inTx && len(batch) == 0 && ctl.ShouldStop(shardPos{s.suffix, last}) {
			return nil
		}
		c, err := r.next(100 * time.Millisecond)
		if err == errIdle {
			if len(batch) > 0 && !inTx {
				if err := apply(last); err != nil {
					return err
				}
			} else if len(batch) == 0 && !inTx {
				s.mu.Lock()
				s.applied, s.db = last, db
				s.mu.Unlock()
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		last = position{r.replid, c.offset}
		if firstRead.IsZero() {
			firstRead = c.at
			s.mu.Lock()
			s.readAt = c.at
			s.mu.Unlock()
		}
		name := strings.ToLower(string(c.args[0]))
		switch name {
		case "ping":
		case "replconf":
			if len(c.args) > 1 && strings.EqualFold(string(c.args[1]), "getack") {
				p, _ := s.position()
				if err := r.ack(p.offset); err != nil {
					return err
				}
			}
		case "select":
			if len(c.args) == 2 {
				n, err := strconv.Atoi(string(c.args[1]))
				if err != nil {
					return engine.Permanent(fmt.Errorf("the source's stream selects database %q", c.args[1]))
				}
				db = n
			}
		case "multi":
			inTx = true
		case "exec":
			inTx = false
		case "flushall":
			// Only the selected databases, and the checkpoint survives:
			// the transaction rewrites it after.
			n, err := databases(ctx, m.dst)
			if err != nil {
				return err
			}
			for _, d := range m.dbs.list(n) {
				batch = append(batch, tcmd{d, [][]byte{[]byte("FLUSHDB")}, c.offset})
			}
		default:
			if m.dbs.has(db) && !touchesOwnKey(c.args) {
				batch = append(batch, tcmd{db, c.args, c.offset})
				for _, a := range c.args {
					size += len(a)
				}
			}
		}
		if !inTx && (len(batch) >= m.e.cfg.StreamBatch || size >= 4<<20 || r.c.r.Buffered() == 0) {
			if len(batch) > 0 {
				if err := apply(last); err != nil {
					return err
				}
			} else {
				s.mu.Lock()
				s.applied, s.db, s.readAt = last, db, time.Time{}
				s.mu.Unlock()
				firstRead = time.Time{}
			}
		}
	}
}

func touchesOwnKey(args [][]byte) bool {
	return len(args) > 1 && bytes.HasPrefix(args[1], []byte("opendts:{"))
}

// apply runs cmds on the target in one MULTI/EXEC that also writes the
// position reached and the source's database there: both or neither.
// With a fence (sf), the EXEC runs only under the run's epoch, and the
// pipeline ends by arming the fence for the next transaction.
func (s *shard) apply(tc *conn, sf *streamFence, cmds []tcmd, to position, db int) error {
	m := s.m
	if sf != nil {
		if err := sf.ready(tc, "changes up to "+to.String()); err != nil {
			return err
		}
	}
	tc.writeCmd("MULTI")
	queued := 0
	cur := 0 // each transaction starts and ends in database 0
	for _, c := range cmds {
		if c.db != cur {
			tc.writeCmd("SELECT", strconv.Itoa(c.db))
			cur = c.db
			queued++
		}
		tc.writeCmdBytes(c.args)
		queued++
	}
	if cur != 0 {
		tc.writeCmd("SELECT", "0")
		queued++
	}
	cp := []string{"HSET", m.cp.key, fieldPhase, string(engine.PhaseIncremental), fieldReplID + s.suffix, to.replid,
		fieldOffset + s.suffix, strconv.FormatInt(to.offset, 10), fieldDB + s.suffix, strconv.Itoa(db)}
	if m.origSource != nil {
		// A FLUSHDB of database 0 in the batch drops the whole hash:
		// the DBA's settings are written again with the rest.
		b, _ := json.Marshal(m.origSource)
		cp = append(cp, fieldSourceConfig, string(b))
	}
	if sf != nil && flushes(cmds) {
		// The batch empties database 0, the fence key with it.
		tc.writeCmd("SET", sf.f.key, strconv.FormatInt(sf.f.epoch, 10))
		queued++
	}
	tc.writeCmd(cp...)
	queued++
	tc.writeCmd("EXEC")
	if sf != nil {
		sf.writeArm(tc)
	}
	tc.nc.SetDeadline(time.Now().Add(m.e.cfg.Timeout))
	defer tc.nc.SetDeadline(time.Time{})
	if err := tc.flush(); err != nil {
		return fmt.Errorf("write to the target: %w", err)
	}
	if _, err := tc.reply(); err != nil {
		return fmt.Errorf("MULTI on the target: %w", err)
	}
	var queueErr error
	for i := 0; i < queued; i++ {
		_, err := tc.reply()
		var re RespError
		if errors.As(err, &re) {
			if queueErr == nil {
				queueErr = re
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the target's replies: %w", err)
		}
	}
	res, err := tc.reply()
	var re RespError
	if errors.As(err, &re) {
		// Nothing ran: a command the target does not know or accept.
		// Retrying cannot help.
		return engine.Permanent(fmt.Errorf("the target refused a transaction of the change stream at %s: %v (%s)", to, queueErr, re))
	}
	if err != nil {
		return fmt.Errorf("EXEC on the target: %w", err)
	}
	if sf != nil {
		armErr := sf.readArm(tc)
		if res == nil && armErr == nil && !sf.armed {
			// The fence key changed after it was read: a newer claim.
			return engine.Permanent(sf.f.refused("commit", "changes up to "+to.String(), sf.seen))
		}
		if armErr != nil {
			return armErr
		}
	}
	if arr, ok := res.([]any); ok {
		for i, v := range arr {
			if e, ok := v.(RespError); ok {
				// The source ran the command; the target refused it
				// (a type it does not hold as the source does): report.
				m.log.Warn("the target refused a command of the change stream", "job_id", m.spec.JobID, "at", to.String(), "index", i, "err", string(e))
			}
		}
	} else if res == nil {
		return errors.New("the target aborted the transaction (EXEC returned nil)")
	}
	return nil
}
