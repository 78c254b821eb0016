package app

import "github.com/opendts/opendts/internal/engine"

// BuiltinEngines are the engines compiled into opendts.
func BuiltinEngines() engine.Registry {
	return engine.Registry{}
}
