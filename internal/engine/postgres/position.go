package postgres

import (
	"github.com/jackc/pglogrepl"

	"github.com/opendts/opendts/internal/engine"
)

// lsnPosition is a place in the source's WAL.
type lsnPosition pglogrepl.LSN

var _ engine.Position = lsnPosition(0)

// Before reports whether p comes before other (another LSN).
func (p lsnPosition) Before(other engine.Position) bool {
	o, ok := other.(lsnPosition)
	return ok && p < o
}

func (p lsnPosition) String() string { return pglogrepl.LSN(p).String() }
