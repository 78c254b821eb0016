// Package engine is the data plane's contract: what a database family must
// do for a migration job (check it now; copy and replicate in later issues),
// described in plain values so that an engine never imports the job service.
//
// The job service (internal/jobs) resolves everything an engine needs
// (addresses, credentials, selected objects) before it calls one; an engine
// never reads the store, the API or the instance catalogue.
package engine

import (
	"context"
	"errors"
	"net"
	"strconv"
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

// Endpoint is one side of a migration, already resolved to an address.
type Endpoint struct {
	// DatabaseType is the API's type name: mysql, mariadb, percona, ...
	DatabaseType string
	Host         string
	Port         int
	User         string
	Password     string
	// InstanceID is the catalogue name the job used, if any; for messages.
	InstanceID string
}

// Address is host:port, for messages and for telling instances apart.
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// ObjectSelection is one element of DatabaseInfo: a whole database, a whole
// schema (database-schema-table families) or listed tables.
type ObjectSelection struct {
	Database string
	Schema   string
	Tables   []string
}

// Migration types, as the API numbers them.
const (
	MigrateStructure           = 1
	MigrateFull                = 2
	MigrateFullAndIncremental  = 3
	MigrateObjectWholeInstance = 1
	MigrateObjectSelected      = 2
)

// Spec is everything an engine needs to know about a job.
type Spec struct {
	JobID string
	// MigrateType: 1 structure only, 2 full, 3 full + incremental.
	MigrateType int
	// MigrateObject: 1 whole instance, 2 the objects in Objects.
	MigrateObject int
	Objects       []ObjectSelection
	Source        Endpoint
	Target        Endpoint
	// TargetReadOnly asks for the target to be read-only to ordinary users
	// while the migration runs (DstInfo.ReadOnly=1).
	TargetReadOnly bool
	// OverrideRoot moves the source's root account too (IsOverrideRoot=1).
	OverrideRoot bool
	// ConsistencyType and its sampling parameters, as the API numbers them.
	ConsistencyType   int
	ConsistencyParams ConsistencyParams
	// ExternParams is MigrateOption.ExternParams, the engine's own extras
	// as JSON text ("" or "[]" for none).
	ExternParams string
	// Resume is set when a migration that was running is started again
	// after opendts restarted: the engine continues from its checkpoints.
	// Unset, a migration starts from the beginning and discards any
	// checkpoint an earlier run of the job left.
	Resume bool
}

// ConsistencyParams are the sampling percentages of ConsistencyType 3.
type ConsistencyParams struct {
	SelectRowsPerTable int
	TablesSelectAll    int
	TablesSelectCount  int
}

// TableVerification is the consistency check's finding for one table.
type TableVerification struct {
	Database string
	Table    string
	// Method is "content" (rows compared by checksum) or "count".
	Method string
	// Rows is how many source rows the comparison covered.
	Rows int64
	// Differences counts differing ranges or rows found; 0 is equal.
	Differences int64
	// FirstKeys names the first differing keys, where the table has one.
	FirstKeys []string
	// Detail says more when there is a difference.
	Detail string `json:",omitempty"`
}

// Verdicts of a check item.
const (
	ResultPass    = "pass"
	ResultWarning = "warning"
	ResultFail    = "fail"
)

// CheckItem is one verdict of a pre-migration check, shown to the DBA as is.
type CheckItem struct {
	// Name is a stable identifier, following the cloud's newer check ids
	// where one fits (ConnectDBCheck, VersionCheck, SrcPrivilegeCheck, ...).
	Name string
	// Result is ResultPass, ResultWarning or ResultFail.
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

// Engine is what a database family implements. Migration phases join it in
// later issues.
type Engine interface {
	Checker
}

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

// StepDef names one step of a migration, in the order the engine runs them.
type StepDef struct {
	// ID is the English identifier (structure, dumper, loader, sinker,
	// verify); Name is what a DBA reads.
	ID   string
	Name string
}

// Reporter is how a running migration tells the job service where it is.
// Calls are cheap and may come from several goroutines.
type Reporter interface {
	// Plan announces the steps before the first one starts.
	Plan(steps []StepDef)
	// StepStarted marks a step running; the previous ones are done.
	StepStarted(id string)
	// Progress sets the overall and current-step percentages (0..100).
	Progress(overall, currentStep int)
	// Lag reports the incremental phase's distance from the source.
	Lag(seconds int64, bytes int64)
	// CaughtUp says a full + incremental job is ready to complete.
	CaughtUp()
	// Verified gives the consistency check's findings, table by table.
	Verified(tables []TableVerification)
}

// Complete modes of CompleteMigrateJob.
const (
	CompleteWaitForSync = "waitForSync"
	CompleteImmediately = "immediately"
)

// Migrator runs a migration. It returns nil when the job succeeded: for
// structure and full jobs when the copy is done, for full + incremental jobs
// after a value arrives on complete (the mode asked for) and everything up
// to that moment is applied. Cancelling ctx stops it (StopMigrateJob or a
// shutdown); it must then return promptly, leaving checkpoints that a later
// call with the same Spec.JobID resumes from.
type Migrator interface {
	Migrate(ctx context.Context, spec Spec, report Reporter, complete <-chan string) error
}
