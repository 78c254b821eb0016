package app

import (
	"os"
	"path/filepath"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/engine/postgres"
	"github.com/opendts/opendts/internal/engine/redis"
)

// BuiltinEngines are the engines compiled into opendts; counters (nil for
// none) receive what they move.
func BuiltinEngines(cfg Config, counters mysql.Counters) engine.Registry {
	return engine.Registry{
		engine.FamilyMySQL: mysql.New(mysql.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows,
			Counters: counters, Budget: cfg.budget}),
		engine.FamilyPostgreSQL: postgres.New(postgres.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows,
			Budget: cfg.budget, WorkDir: workDir(cfg, "pg-work")}),
		engine.FamilyRedis: redis.New(redis.Config{Logger: cfg.Logger, TempDir: workDir(cfg, "redis-spool")}),
	}
}

// workDir is a directory of the data directory where a family keeps its
// runs' files (PostgreSQL's schema dumps, Redis's received RDBs), so that
// what a killed process left is found there, not in the system's /tmp.
// "" (the system's temporary directory) without a data directory or when
// it cannot be made.
func workDir(cfg Config, name string) string {
	if cfg.DataDir == "" {
		return ""
	}
	dir := filepath.Join(cfg.DataDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}
