// Package redis is the engine of the Redis family. opendts is a replica
// of the source: PSYNC gives it an RDB (rdb package), whose keys it writes
// to the target with pipelined RESTOREs (restore.go), and then the
// command stream, applied in MULTI/EXEC transactions that also write the
// replication offset reached into a checkpoint key on the target
// (stream.go, checkpoint.go): a restart asks the source for a partial
// resync from exactly there, so nothing is lost or applied twice.
//
// Logical databases are the unit of selection: DatabaseInfo
// [{"Database":"0"},{"Database":"3"}] moves databases 0 and 3 (an opendts
// choice; the cloud's console selects whole instances). A Redis Cluster
// may be on either side: each source master is read as its own replica
// (multistream.go), keys go to the target master of their slot, and the
// stream into a cluster is applied one slot a transaction with a
// checkpoint key in that slot (cluster.go, clusterstream.go).
//
// Passwords go to AUTH only: never into a message, an error or a log.
package redis

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// Config tunes the engine; the zero value is usable.
type Config struct {
	// DialTimeout bounds a connection; default 5 s.
	DialTimeout time.Duration
	// Timeout bounds a silent server during a transfer; default 60 s
	// (a master pings its replicas every 10 s).
	Timeout time.Duration
	Logger  *slog.Logger
	// RetryFor is how long failures are retried before the job fails.
	RetryFor time.Duration
	// TempDir holds a received RDB while it is applied; default the
	// system's temporary directory.
	TempDir string
	// BigKeyBytes: a value whose DUMP form is larger is written as
	// commands of BatchElements elements rather than one RESTORE;
	// default 8 MiB.
	BigKeyBytes   int
	BatchElements int
	// StreamBatch bounds the commands of one target transaction of the
	// change stream; default 1,000.
	StreamBatch int
}

// Engine checks and migrates Redis.
type Engine struct{ cfg Config }

var _ engine.Engine = (*Engine)(nil)

// New returns an engine with cfg's zero fields set to their defaults.
func New(cfg Config) *Engine {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = engine.DefaultRetryFor
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.BigKeyBytes <= 0 {
		cfg.BigKeyBytes = 8 << 20
	}
	if cfg.BatchElements <= 0 {
		cfg.BatchElements = 1000
	}
	if cfg.StreamBatch <= 0 {
		cfg.StreamBatch = 1000
	}
	// go-redis logs its pool's dial failures itself; the engine reports
	// what fails, with the job, through its own logger.
	goredis.SetLogger(quietLogger{})
	return &Engine{cfg: cfg}
}

// client is a go-redis client on ep's database 0, for the control work
// (INFO, CONFIG, the checkpoint, the check, the verifier).
func (e *Engine) client(ep engine.Endpoint, db int) *goredis.Client {
	return goredis.NewClient(&goredis.Options{
		Addr:            ep.Address(),
		Username:        ep.User,
		Password:        ep.Password,
		DB:              db,
		Protocol:        2,
		DisableIdentity: true,
		DialTimeout:     e.cfg.DialTimeout,
		ReadTimeout:     e.cfg.Timeout,
		WriteTimeout:    e.cfg.Timeout,
		MaxRetries:      -1,
		PoolSize:        4,
	})
}

// dbSet is the selection: logical databases by number.
type dbSet struct {
	all bool
	dbs []int
}

func (s dbSet) has(db int) bool { return s.all || slices.Contains(s.dbs, db) }

// list returns the selected databases among 0..count-1.
func (s dbSet) list(count int) []int {
	if !s.all {
		return s.dbs
	}
	out := make([]int, count)
	for i := range out {
		out[i] = i
	}
	return out
}

// selection reads DatabaseInfo as logical databases.
func selection(spec engine.Spec) (dbSet, error) {
	if spec.MigrateObject != engine.MigrateObjectSelected {
		return dbSet{all: true}, nil
	}
	var s dbSet
	for _, o := range spec.Objects {
		n, err := strconv.Atoi(o.Database)
		if err != nil || n < 0 || strconv.Itoa(n) != o.Database {
			return s, fmt.Errorf("DatabaseInfo names database %q: a Redis database is a number (0, 1, ...)", o.Database)
		}
		if len(o.Tables) > 0 || o.Schema != "" {
			return s, fmt.Errorf("DatabaseInfo lists tables of database %q: Redis moves whole logical databases", o.Database)
		}
		s.dbs = append(s.dbs, n)
	}
	slices.Sort(s.dbs)
	return s, nil
}

// info reads INFO section as a map.
func info(ctx context.Context, c goredis.Cmdable, section string) (map[string]string, error) {
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// databases is the server's number of logical databases.
func databases(ctx context.Context, c goredis.Cmdable) (int, error) {
	v, err := c.ConfigGet(ctx, "databases").Result()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v["databases"])
	if err != nil {
		return 0, fmt.Errorf("CONFIG GET databases: %q", v["databases"])
	}
	return n, nil
}

// isOwnKey reports whether key is opendts's own (a checkpoint), never
// migrated, compared or counted.
func isOwnKey(key string) bool { return strings.HasPrefix(key, "opendts:{") }

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
