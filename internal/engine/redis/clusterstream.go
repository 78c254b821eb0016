package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// The change stream into a cluster target. A cluster runs MULTI/EXEC only
// within one slot, so each slot's commands of a batch go in a transaction
// of their own that also writes the offset reached into a checkpoint key
// of that slot: exactly once per slot. The stream's floor (everything up
// to it applied in every slot) is saved in the job's checkpoint after each
// batch; a restart resumes from the floor and skips, slot by slot, what
// that slot's checkpoint says is applied.

// slotTags holds, for each slot, a short hash tag that maps to it.
var slotTags = func() (t [16384]string) {
	left := len(t)
	for i := 0; left > 0; i++ {
		s := strconv.FormatInt(int64(i), 36)
		if sl := keySlot([]byte(s)); t[sl] == "" {
			t[sl] = s
			left--
		}
	}
	return
}()

// slotCheckpointKey is the job's checkpoint of one slot on the target.
func slotCheckpointKey(jobID string, slot int) string {
	return "opendts:{" + slotTags[slot] + "}:" + jobID
}

// clusterApplier applies batches to a cluster target.
type clusterApplier struct {
	m *migration
	// suffix is the source shard's, in the checkpoints' names.
	suffix string
	owner  [16384]int
	nodes  []*conn
	// applied is each slot's checkpoint as read at the start and kept
	// since: commands at or below it are already on the target.
	applied [16384]int64
}

func (m *migration) newClusterApplier(ctx context.Context, suffix string) (*clusterApplier, error) {
	a := &clusterApplier{m: m, suffix: suffix}
	slots, err := m.dst.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on the target: %w", err)
	}
	for i := range a.owner {
		a.owner[i] = -1
	}
	index := map[string]int{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		addr := s.Nodes[0].Addr
		i, ok := index[addr]
		if !ok {
			ep, err := withAddr(m.spec.Target, addr)
			if err != nil {
				a.close()
				return nil, err
			}
			c, err := dial(ctx, ep, m.e.cfg.DialTimeout)
			if err != nil {
				a.close()
				return nil, err
			}
			i = len(a.nodes)
			index[addr] = i
			a.nodes = append(a.nodes, c)
		}
		for sl := s.Start; sl <= s.End; sl++ {
			a.owner[sl] = i
		}
	}
	// The slots' checkpoints, pipelined through the cluster client.
	pipe := m.dst.Pipeline()
	cmds := make([]*goredis.StringCmd, len(a.applied))
	for sl := range a.applied {
		cmds[sl] = pipe.HGet(ctx, slotCheckpointKey(m.spec.JobID, sl)+a.suffix, fieldOffset)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		a.close()
		return nil, fmt.Errorf("read the slots' checkpoints on the target: %w", err)
	}
	for sl, c := range cmds {
		if v, err := c.Int64(); err == nil {
			a.applied[sl] = v
		}
	}
	return a, nil
}

func (a *clusterApplier) close() {
	for _, c := range a.nodes {
		c.Close()
	}
}

// keysOf lists the keys of a command (nil for none), for routing.
func keysOf(args [][]byte) [][]byte {
	if len(args) < 2 {
		return nil
	}
	switch strings.ToLower(string(args[0])) {
	case "publish", "spublish", "function", "script", "flushdb", "flushall":
		return nil
	case "rename", "renamenx", "rpoplpush", "lmove", "blmove", "smove", "copy", "brpoplpush":
		if len(args) > 2 {
			return [][]byte{args[1], args[2]}
		}
	}
	return [][]byte{args[1]}
}

// split turns a command on keys of several slots that acts on each key
// alone into one command per key.
func split(args [][]byte) [][][]byte {
	switch strings.ToLower(string(args[0])) {
	case "del", "unlink", "touch":
		var out [][][]byte
		for _, k := range args[1:] {
			out = append(out, [][]byte{args[0], k})
		}
		return out
	case "mset":
		var out [][][]byte
		for i := 1; i+1 < len(args); i += 2 {
			out = append(out, [][]byte{[]byte("SET"), args[i], args[i+1]})
		}
		return out
	}
	return [][][]byte{args}
}

// slotCmd is a command for one slot, with the stream offset it ends at.
type slotCmd struct {
	args   [][]byte
	offset int64
}

// apply applies cmds (database 0 of the source) up to to.
func (a *clusterApplier) apply(ctx context.Context, cmds []tcmd, to position) error {
	m := a.m
	groups := map[int][]slotCmd{} // slot → its commands, in order
	var order []int
	var broadcast [][][]byte
	for _, c := range cmds {
		for _, args := range split(c.args) {
			keys := keysOf(args)
			if len(keys) == 0 {
				name := strings.ToLower(string(args[0]))
				if name == "flushdb" || name == "flushall" {
					return engine.Permanent(errors.New("the source emptied its database: opendts does not apply FLUSHDB/FLUSHALL to a cluster target"))
				}
				broadcast = append(broadcast, args) // functions: on every node
				continue
			}
			slot := keySlot(keys[0])
			for _, k := range keys[1:] {
				if keySlot(k) != slot {
					return engine.Permanent(fmt.Errorf("the source ran %s on keys of different cluster slots, which a cluster target cannot run", strings.ToUpper(string(args[0]))))
				}
			}
			if c.offset <= a.applied[slot] {
				continue // applied before a restart
			}
			if _, ok := groups[slot]; !ok {
				order = append(order, slot)
			}
			groups[slot] = append(groups[slot], slotCmd{args, c.offset})
		}
	}
	// One pipeline per node: MULTI, the slot's commands, its
	// checkpoint, EXEC, for each slot of the batch.
	type sent struct {
		slot, queued int
		offset       int64
	}
	perNode := make([][]sent, len(a.nodes))
	for _, slot := range order {
		i := a.owner[slot]
		if i < 0 {
			return fmt.Errorf("no master of the target serves slot %d", slot)
		}
		c := a.nodes[i]
		g := groups[slot]
		c.writeCmd("MULTI")
		for _, sc := range g {
			c.writeCmdBytes(sc.args)
		}
		last := g[len(g)-1].offset
		c.writeCmd("HSET", slotCheckpointKey(m.spec.JobID, slot)+a.suffix, fieldOffset, strconv.FormatInt(last, 10), fieldReplID, to.replid)
		c.writeCmd("EXEC")
		perNode[i] = append(perNode[i], sent{slot, len(g) + 1, last})
	}
	for i, c := range a.nodes {
		for _, args := range broadcast {
			c.writeCmdBytes(args)
		}
		if len(perNode[i]) == 0 && len(broadcast) == 0 {
			continue
		}
		if err := c.flush(); err != nil {
			return fmt.Errorf("write to the target: %w", err)
		}
	}
	var retry error
	for i, c := range a.nodes {
		for _, s := range perNode[i] {
			if _, err := c.reply(); err != nil { // MULTI
				return fmt.Errorf("MULTI on the target: %w", err)
			}
			var queueErr error
			for range s.queued {
				_, err := c.reply()
				var re RespError
				if errors.As(err, &re) {
					if queueErr == nil {
						queueErr = re
					}
				} else if err != nil {
					return fmt.Errorf("reading the target's replies: %w", err)
				}
			}
			res, err := c.reply()
			var re RespError
			if errors.As(err, &re) {
				var qe RespError
				if errors.As(queueErr, &qe) && isRedirect(qe) {
					// The slot moved or is moving: nothing of it ran.
					// A new run reads the new owners and goes on from
					// each slot's checkpoint.
					retry = fmt.Errorf("slot %d of the target moved (%s): starting the stream again", s.slot, qe)
					continue
				}
				return engine.Permanent(fmt.Errorf("the target refused a transaction of the change stream for slot %d: %v (%s)", s.slot, queueErr, re))
			}
			if err != nil {
				return fmt.Errorf("EXEC on the target: %w", err)
			}
			if arr, ok := res.([]any); ok {
				for k, v := range arr {
					if e, ok := v.(RespError); ok {
						m.log.Warn("the target refused a command of the change stream", "job_id", m.spec.JobID, "slot", s.slot, "index", k, "err", string(e))
					}
				}
			}
			a.applied[s.slot] = s.offset
		}
		for range broadcast {
			if _, err := c.reply(); err != nil {
				var re RespError
				if !errors.As(err, &re) {
					return fmt.Errorf("reading the target's replies: %w", err)
				}
				// FUNCTION LOAD of a library already there again.
			}
		}
	}
	if retry != nil {
		return retry
	}
	// Everything up to to is applied in every slot: the floor moves.
	return m.cp.set(ctx, fieldPhase, string(engine.PhaseIncremental), fieldReplID+a.suffix, to.replid, fieldOffset+a.suffix, strconv.FormatInt(to.offset, 10), fieldDB+a.suffix, "0")
}

// dropSlotCheckpoints removes the job's slot checkpoints from a cluster
// target (a fresh start, or a job done).
func (m *migration) dropSlotCheckpoints(ctx context.Context) error {
	cc, ok := m.dst.(*goredis.ClusterClient)
	if !ok {
		return nil
	}
	if err := m.fence.check(ctx, m.dst, "dropping the slot checkpoints"); err != nil {
		return err
	}
	pattern := "opendts:{*}:" + m.spec.JobID + "*"
	return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	})
}
