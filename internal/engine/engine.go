// Package engine is the data plane's contract: what a database family must
// do for a migration job, described in plain values so that an engine never
// imports the job service.
//
// A family supplies only what is its own: its check items (Checker) and the
// units of a migration (contract.go: structure, snapshot and copy, change
// stream, verifier, and the phase checkpoint kept on its target). The
// sequence of steps, progress, fresh start versus resume, retries, the
// ready-to-complete rule, the Complete protocol and what ConsistencyType
// means belong to the driver (internal/engine/driver), shared by every
// family.
//
// The job service (internal/jobs) resolves everything an engine needs
// (addresses, credentials, selected objects) before it calls one; an engine
// never reads the store, the API or the instance catalogue.
package engine

import (
	"context"
	"errors"
	"strings"
)

// Family groups database types that migrate into each other: mysql, mariadb
// and percona are one family.
type Family string

// The database families opendts knows by name.
const (
	FamilyMySQL      Family = "mysql"
	FamilyPostgreSQL Family = "postgresql"
	FamilyRedis      Family = "redis"
	FamilyMongoDB    Family = "mongodb"
	FamilySQLServer  Family = "sqlserver"
)

// FamilyOf returns the family of an API database type (SrcDatabaseType,
// DstDatabaseType), or "" when the type is unknown.
func FamilyOf(databaseType string) Family {
	switch strings.ToLower(databaseType) {
	case "mysql", "mariadb", "percona":
		return FamilyMySQL
	case "postgresql":
		return FamilyPostgreSQL
	case "redis":
		return FamilyRedis
	case "mongodb":
		return FamilyMongoDB
	case "sqlserver":
		return FamilySQLServer
	}
	return ""
}

// Verdicts of a check item.
const (
	ResultPass    = "pass"
	ResultWarning = "warning"
	ResultFail    = "fail"
	// ResultNotRun: the item could not look at anything because a server
	// it needs was not reached; the connection item says why, once. The
	// check does not pass while any item has not run.
	ResultNotRun = "notRun"
)

// CheckItem is one verdict of a pre-migration check, shown to the DBA as is.
type CheckItem struct {
	// Name is a stable identifier, following the cloud's newer check ids
	// where one fits (ConnectDBCheck, VersionCheck, SrcPrivilegeCheck, ...).
	Name string
	// Result is ResultPass, ResultWarning, ResultFail or ResultNotRun.
	Result string
	// Message names the object and the setting the verdict is about.
	Message string
	// Advice says how to fix a warning or a failure; empty on a pass.
	Advice string
}

// CheckProgress is told how many check items are done out of how many.
type CheckProgress func(done, total int)

// Checker runs the pre-migration check of one family.
type Checker interface {
	// Check runs every item against the real source and target and returns
	// the verdicts. An error means the check itself could not run (not that
	// an item failed); it is reported to the DBA as a failed check.
	Check(ctx context.Context, spec Spec, progress CheckProgress) ([]CheckItem, error)
}

// ErrFenced: the job's target-side checkpoint holds a newer epoch than the
// run's (Spec.Epoch): another node owns the job now, and this run must stop
// without writing. No retry cures it.
var ErrFenced = errors.New("another opendts node has taken over this job (its checkpoint holds a newer epoch); this run stops without writing")

// ErrUnsupported is returned by a Registry for a pair no engine handles.
var ErrUnsupported = errors.New("no engine supports this pair of databases yet")

// Registry maps a family to its engine. It is filled at start-up and read
// afterwards, so it needs no lock.
type Registry map[Family]Engine

// For returns the engine that migrates src into dst.
func (r Registry) For(srcType, dstType string) (Engine, error) {
	src, dst := FamilyOf(srcType), FamilyOf(dstType)
	if src == "" || src != dst {
		return nil, ErrUnsupported
	}
	e, ok := r[src]
	if !ok {
		return nil, ErrUnsupported
	}
	return e, nil
}
