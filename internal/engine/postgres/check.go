package postgres

import (
	"context"

	"github.com/opendts/opendts/internal/engine"
)

// Check runs the pre-migration check (see check_*.go).
func (e *Engine) Check(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
	c, err := e.connect(ctx, spec.Source, "source", "")
	if err != nil {
		return []engine.CheckItem{{Name: "ConnectDBCheck", Result: engine.ResultFail, Message: err.Error(),
			Advice: "check SrcInfo's address, user and password, and that pg_hba.conf admits opendts's host"}}, nil
	}
	closeQuietly(c)
	return []engine.CheckItem{{Name: "ConnectDBCheck", Result: engine.ResultPass, Message: "connected"}}, nil
}
