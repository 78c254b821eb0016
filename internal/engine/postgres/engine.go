// Package postgres is the engine of the PostgreSQL family. It supplies what
// is the family's own; the driver (internal/engine/driver) runs it.
//
//   - The pre-migration check (check*.go): it connects to the real source
//     and target and turns what it finds into check items a DBA can act on.
//   - The units of a migration (migrate.go): one exported snapshot per
//     source database (snapshot.go), the structure serialized by the
//     source's own pg_dump from that snapshot and replayed by pg_restore
//     (structure.go: pre-data before the rows, post-data after them, in
//     parallel), roles for whole-instance jobs (roles.go), a chunked
//     parallel copy that pipes COPY TO into COPY FROM with per-chunk marks
//     committed with the rows (copy.go, checkpoint.go), sequences set to
//     the source's values (sequences.go) and the checksum comparison
//     (verify.go).
//
// A job's databases are copied each from its own snapshot: PostgreSQL
// imports an exported snapshot only into a session of the same database,
// so one snapshot cannot span databases. The snapshots are taken one after
// the other, before any row moves.
package postgres

import (
	"log/slog"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// Config tunes the engine. The zero value is usable: New fills defaults.
type Config struct {
	// DialTimeout bounds opening a connection. Default 5s.
	DialTimeout time.Duration
	// Logger receives the engine's own messages. Default slog.Default().
	Logger *slog.Logger
	// Workers copy chunks in parallel, each with a source and a target
	// connection; pg_restore builds indexes with as many jobs. Default 4.
	Workers int
	// ChunkRows is the rows aimed at per chunk, the unit of a target
	// transaction and of resuming. Default 100,000.
	ChunkRows int64
	// ChunkBytes bounds a chunk's size on disk (its share of the table
	// with its TOAST data). Default 64 MiB.
	ChunkBytes int64
	// BinDir is where pg_dump and pg_restore are; "" finds the newest
	// /usr/lib/postgresql/*/bin, then PATH.
	BinDir string
	// WorkDir holds the run's schema dumps. Default os.TempDir().
	WorkDir string
	// RetryFor is how long a dropped or refused connection is retried
	// before the job fails. Default 2 minutes.
	RetryFor time.Duration
}

// Engine checks and migrates PostgreSQL databases.
type Engine struct {
	cfg Config
}

var _ engine.Engine = (*Engine)(nil)

// New returns an engine with cfg's zero fields set to their defaults.
func New(cfg Config) *Engine {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.ChunkRows <= 0 {
		cfg.ChunkRows = 100_000
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = 64 << 20
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Minute
	}
	return &Engine{cfg: cfg}
}
