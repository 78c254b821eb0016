package app

import (
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/engine/postgres"
	"github.com/opendts/opendts/internal/engine/redis"
)

// BuiltinEngines are the engines compiled into opendts; counters (nil for
// none) receive what they move.
func BuiltinEngines(cfg Config, counters mysql.Counters) engine.Registry {
	return engine.Registry{
		engine.FamilyMySQL:      mysql.New(mysql.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows, Counters: counters}),
		engine.FamilyPostgreSQL: postgres.New(postgres.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows}),
		engine.FamilyRedis:      redis.New(redis.Config{Logger: cfg.Logger}),
	}
}
