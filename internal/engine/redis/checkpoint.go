package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// checkpointKey is the job's hash on the target, in database 0: the
// phase, the replication id and offset applied, and the source settings
// to restore. The stream's transactions rewrite it with the commands they
// apply. The braces make it a hash tag, for a cluster target.
func checkpointKey(jobID string) string { return "opendts:{" + jobID + "}:checkpoint" }

// Fields of the checkpoint hash.
const (
	fieldPhase  = "phase"
	fieldReplID = "replid"
	fieldOffset = "offset"
	// fieldCopying is set while a copy runs: a copy that finds it was
	// interrupted and starts again from an empty target.
	fieldCopying = "copying"
	// fieldSourceConfig holds the source's settings as they were before
	// ExternParams changed them (JSON).
	fieldSourceConfig = "source-config"
	// fieldShards lists the source's masters as the copy read them.
	fieldShards = "shards"
)

type checkpoint struct {
	c   goredis.UniversalClient // target, database 0
	key string
	// fence is the run's epoch in cluster mode (fence.go): the hash is
	// written only under it.
	fence *fence
}

func (cp *checkpoint) get(ctx context.Context) (map[string]string, error) {
	m, err := cp.c.HGetAll(ctx, cp.key).Result()
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint on the target: %w", err)
	}
	return m, nil
}

func (cp *checkpoint) set(ctx context.Context, kv ...string) error {
	args := make([]any, len(kv))
	for i, s := range kv {
		args[i] = s
	}
	var err error
	if cp.fence.on() {
		err = cp.fence.write(ctx, cp.c, "the checkpoint", func(p goredis.Pipeliner) { p.HSet(ctx, cp.key, args...) })
	} else {
		err = cp.c.HSet(ctx, cp.key, args...).Err()
	}
	if err != nil {
		return fmt.Errorf("write the checkpoint on the target: %w", err)
	}
	return nil
}

func (cp *checkpoint) del(ctx context.Context, fields ...string) error {
	if cp.fence.on() {
		return cp.fence.write(ctx, cp.c, "the checkpoint", func(p goredis.Pipeliner) { p.HDel(ctx, cp.key, fields...) })
	}
	return cp.c.HDel(ctx, cp.key, fields...).Err()
}

// drop deletes the whole hash.
func (cp *checkpoint) drop(ctx context.Context) error {
	if cp.fence.on() {
		return cp.fence.write(ctx, cp.c, "the checkpoint", func(p goredis.Pipeliner) { p.Del(ctx, cp.key) })
	}
	return cp.c.Del(ctx, cp.key).Err()
}

// position is a replication position: the master's replication id and
// the offset of the last byte applied.
type position struct {
	replid string
	offset int64
}

func (p position) Before(o engine.Position) bool {
	op, ok := o.(position)
	return ok && p.offset < op.offset
}

func (p position) String() string { return p.replid + ":" + strconv.FormatInt(p.offset, 10) }

// shardSuffix names the checkpoint fields of source shard i: none for
// the first (a standalone source), ":i" for the others of a cluster.
func shardSuffix(i int) string {
	if i == 0 {
		return ""
	}
	return ":" + strconv.Itoa(i)
}

// loadPosition reads the position of the shard with suffix saved after
// the copy or by the stream.
func (cp *checkpoint) loadPosition(ctx context.Context, suffix string) (position, error) {
	m, err := cp.get(ctx)
	if err != nil {
		return position{}, err
	}
	off, err := strconv.ParseInt(m[fieldOffset+suffix], 10, 64)
	if m[fieldReplID+suffix] == "" || err != nil {
		return position{}, errors.New("the checkpoint on the target has no replication position: the copy did not finish")
	}
	return position{m[fieldReplID+suffix], off}, nil
}

// sourceConfig is the DBA's settings of each source master, by address.
func (cp *checkpoint) sourceConfig(ctx context.Context) (map[string]map[string]string, error) {
	m, err := cp.get(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	if s := m[fieldSourceConfig]; s != "" {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("the checkpoint's source settings: %w", err)
		}
	}
	return out, nil
}

func (cp *checkpoint) saveSourceConfig(ctx context.Context, orig map[string]map[string]string) error {
	b, _ := json.Marshal(orig)
	return cp.set(ctx, fieldSourceConfig, string(b))
}
