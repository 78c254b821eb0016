package app

import (
	"log/slog"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
)

// BuiltinEngines are the engines compiled into opendts.
func BuiltinEngines(log *slog.Logger) engine.Registry {
	return engine.Registry{
		engine.FamilyMySQL: mysql.New(mysql.Config{Logger: log}),
	}
}
