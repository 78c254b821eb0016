// Package mysql is the engine of the MySQL family (MySQL, MariaDB, Percona).
// It supplies what is the family's own; the driver (internal/engine/driver)
// runs it.
//
//   - The pre-migration check (this file and the item files): it connects
//     to the real source and target and turns what it finds into check
//     items a DBA can act on.
//   - The units of a migration (migrate.go, engine.Migration): structure
//     from SHOW CREATE (schema.go), a consistent snapshot (snapshot.go) and
//     a chunked parallel copy (copy.go, loaddata.go) with per-chunk marks
//     on the target (checkpoint.go), secondary indexes after the rows
//     (indexes.go), the binlog change stream (cdc*.go) and the checksum
//     comparison (verify.go).
//
// Each check item is a small type with a Name and a Check method, one file
// per family of items (connect.go, version.go, privileges.go, binlog.go,
// objects.go, charset.go, primarykey.go). Items read the servers through a
// side, which caches what several items need (variables, grants, the source
// inventory), so each fact is queried once per check.
//
// The engine never writes to either server during a check: the one probe
// that needs a privileged statement (ReadOnlyPrivilegeCheck) sets read_only
// to the value it already has. It never puts a password in a message.
package mysql

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/budget"
)

// Config tunes the engine. The zero value is usable: New fills defaults.
type Config struct {
	// DialTimeout bounds opening a TCP connection to a server; an address
	// nothing answers on fails after it. Default 5s.
	DialTimeout time.Duration
	// QueryTimeout bounds each read and write on a connection. Default 30s:
	// information_schema on a large instance can take a while.
	QueryTimeout time.Duration
	// Parallel is how many check items run at once. Default 4.
	Parallel int
	// Logger receives the driver's own messages. Default slog.Default().
	Logger *slog.Logger

	// Workers copy chunks in parallel, each with a source and a target
	// connection. Default 4.
	Workers int
	// ChunkRows is the rows aimed at per chunk, the unit of a target
	// transaction and of resuming. Default 50,000.
	ChunkRows int64
	// BatchBytes bounds one INSERT statement. Default 1 MiB (less when the
	// target's max_allowed_packet is smaller).
	BatchBytes int
	// DisableLoadData copies with multi-row INSERTs only, never LOAD DATA
	// LOCAL INFILE (which is cheaper for the target and used by default
	// where the target allows it).
	DisableLoadData bool
	// LoadDataMinRows is the fewest rows a folded table must have in one
	// group of changes for the incremental phase to write them with LOAD
	// DATA rather than REPLACE statements (see cdc_load.go). Default 1,000.
	LoadDataMinRows int
	// Counters receives the rows and bytes moved, for metrics; nil counts
	// nothing.
	Counters Counters
	// RetryFor is how long a dropped or refused connection is retried
	// before the job fails. Default 2 minutes.
	RetryFor time.Duration
	// Budget is the node's copy workers, shared by every job: a worker
	// copies a chunk (or builds a table's deferred indexes) only while it
	// holds one of its slots. Nil: each job copies with its Workers.
	Budget *budget.Budget
	// FencedIdleTimeout is the wait_timeout of the target sessions that
	// write rows in cluster mode (Spec.Epoch > 0): the copy's writers and
	// the change applier. A node paused inside a transaction then loses
	// it, and the row locks it holds, after this long, instead of
	// blocking the job's new owner until it wakes. Default 60s.
	FencedIdleTimeout time.Duration
}

// Engine checks and migrates MySQL-family databases.
type Engine struct {
	cfg Config
}

var _ engine.Engine = (*Engine)(nil)

// New returns an engine with cfg's zero fields set to their defaults.
func New(cfg Config) *Engine {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 50_000
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.LoadDataMinRows <= 0 {
		cfg.LoadDataMinRows = 1000
	}
	if cfg.Counters == nil {
		cfg.Counters = noCounters{}
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Minute
	}
	if cfg.FencedIdleTimeout <= 0 {
		cfg.FencedIdleTimeout = time.Minute
	}
	return &Engine{cfg: cfg}
}

// item is one check: it looks at the run's servers and gives one verdict.
// An item that needs a side it cannot reach says so in its verdict; it
// never returns an error, so that one broken item cannot hide the others.
type item interface {
	Name() string
	Check(ctx context.Context, r *run) engine.CheckItem
}

// run is the state of one Check call, shared by its items.
type run struct {
	spec     engine.Spec
	src, dst *side
	// inv is what the selection resolves to on the source.
	inv lazy[*inventory]
}

// Check runs the items that apply to spec: the two connections first, since
// every other item depends on them, then the rest, cfg.Parallel at a time.
// Items are returned in a fixed order whatever order they finish in.
func (e *Engine) Check(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
	r := &run{
		spec: spec,
		src:  newSide(sourceRole, spec.Source, e.cfg),
		dst:  newSide(targetRole, spec.Target, e.cfg),
	}
	defer r.src.close()
	defer r.dst.close()

	first := []item{connectCheck{r.src}, connectCheck{r.dst}}
	rest := itemsFor(spec)
	results := make([]engine.CheckItem, len(first)+len(rest))
	total := len(results)

	var mu sync.Mutex
	done := 0
	report := func(i int, res engine.CheckItem) {
		// One lock for results and progress, so that progress is told in
		// order and never from two goroutines at once.
		mu.Lock()
		defer mu.Unlock()
		results[i] = res
		done++
		if progress != nil {
			progress(done, total)
		}
	}

	r.runAll(ctx, first, 0, len(first), report)
	r.runAll(ctx, rest, len(first), e.cfg.Parallel, report)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mysql check: %w", err)
	}
	return results, nil
}

// runAll runs items at most limit at a time; the result of items[i] goes to
// position offset+i. It stops starting items once ctx is done.
func (r *run) runAll(ctx context.Context, items []item, offset, limit int, report func(int, engine.CheckItem)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			report(offset+i, it.Check(ctx, r))
		})
	}
	wg.Wait()
}

// itemsFor lists the items after the connections that apply to spec.
func itemsFor(spec engine.Spec) []item {
	items := []item{
		versionCheck{},
		srcPrivilegeCheck{},
		dstPrivilegeCheck{},
	}
	if spec.MigrateType == engine.MigrateFullAndIncremental {
		items = append(items, binlogCheck{})
	}
	items = append(items,
		sourceObjectsCheck{},
		dstEmptyCheck{},
		charsetCheck{},
		lowerCaseCheck{},
	)
	if spec.MigrateType == engine.MigrateFull || spec.MigrateType == engine.MigrateFullAndIncremental {
		items = append(items, primaryKeyCheck{})
	}
	if spec.TargetReadOnly {
		items = append(items, readOnlyCheck{})
	}
	return items
}

// Verdict helpers keep every item's result in the same shape.

func pass(name, format string, args ...any) engine.CheckItem {
	return engine.CheckItem{Name: name, Result: engine.ResultPass, Message: fmt.Sprintf(format, args...)}
}

func warn(name, message, advice string) engine.CheckItem {
	return engine.CheckItem{Name: name, Result: engine.ResultWarning, Message: message, Advice: advice}
}

func fail(name, message, advice string) engine.CheckItem {
	return engine.CheckItem{Name: name, Result: engine.ResultFail, Message: message, Advice: advice}
}

// lazy computes a value once, on first use, for every item that needs it.
// The first caller's ctx is used; all callers share the Check's ctx.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (l *lazy[T]) get(f func() (T, error)) (T, error) {
	l.once.Do(func() { l.v, l.err = f() })
	return l.v, l.err
}

// Counters is told what the engine moves, as it moves it.
type Counters interface {
	CopiedRows(jobID string, rows, bytes int64)
	AppliedRows(jobID string, rows int64)
}

// FencedCounter is a Counters that is also told of each write the fence
// of cluster mode refused (fence.go); internal/metrics implements it.
type FencedCounter interface {
	FencedWrite(jobID string)
}

type noCounters struct{}

func (noCounters) CopiedRows(string, int64, int64) {}
func (noCounters) AppliedRows(string, int64)       {}
