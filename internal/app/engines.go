package app

import (
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
)

// BuiltinEngines are the engines compiled into opendts.
func BuiltinEngines(cfg Config) engine.Registry {
	return engine.Registry{
		engine.FamilyMySQL: mysql.New(mysql.Config{Logger: cfg.Logger, Workers: cfg.CopyWorkers, ChunkRows: cfg.ChunkRows}),
	}
}
