package app

import (
	"path/filepath"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/engine/postgres"
)

// BuiltinEngines are the engines compiled into opendts; counters (nil for
// none) receive what they move.
func BuiltinEngines(cfg Config, counters mysql.Counters) engine.Registry {
	return engine.Registry{
		engine.FamilyMySQL: mysql.New(mysql.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows, Counters: counters, Budget: cfg.budget}),
		engine.FamilyPostgreSQL: postgres.New(postgres.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows, Budget: cfg.budget,
			WorkDir: pgWorkDir(cfg)}),
	}
}

// pgWorkDir is where the PostgreSQL family keeps its runs' schema dumps:
// under the data directory, so that what a killed process left is found
// and removed at the next start (no other serve uses the directory).
func pgWorkDir(cfg Config) string {
	if cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(cfg.DataDir, "pg-work")
}
