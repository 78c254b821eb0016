package engine

import (
	"net"
	"strconv"
)

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
	// Database is the database a connection opens, for families that
	// connect to one (PostgreSQL); "" lets the family choose.
	Database string
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

// MigrateType is MigrateOption.MigrateType: what a job moves.
type MigrateType int

// The migration types, as the API numbers them.
const (
	MigrateStructure          MigrateType = 1
	MigrateFull               MigrateType = 2
	MigrateFullAndIncremental MigrateType = 3
)

// Copies reports whether the type copies rows.
func (t MigrateType) Copies() bool { return t == MigrateFull || t == MigrateFullAndIncremental }

// Incremental reports whether the type replicates changes after the copy.
func (t MigrateType) Incremental() bool { return t == MigrateFullAndIncremental }

// MigrateObject is MigrateOption.MigrateObject: what part of the source.
type MigrateObject int

// The object scopes, as the API numbers them.
const (
	MigrateObjectWholeInstance MigrateObject = 1
	MigrateObjectSelected      MigrateObject = 2
)

// Spec is everything an engine needs to know about a job.
type Spec struct {
	JobID         string
	MigrateType   MigrateType
	MigrateObject MigrateObject
	Objects       []ObjectSelection
	Source        Endpoint
	Target        Endpoint
	// TargetReadOnly asks for the target to be read-only to ordinary users
	// while the migration runs (DstInfo.ReadOnly=1).
	TargetReadOnly bool
	// OverrideRoot moves the source's root account too (IsOverrideRoot=1).
	OverrideRoot bool
	// ConsistencyType and its sampling parameters, as the API numbers them.
	ConsistencyType   ConsistencyType
	ConsistencyParams ConsistencyParams
	// ExternParams is MigrateOption.ExternParams, the engine's own extras
	// as JSON text ("" or "[]" for none).
	ExternParams string
	// Resume is set when a migration that was running is started again
	// after opendts restarted: the engine continues from its checkpoints.
	// Unset, a migration starts from the beginning and discards any
	// checkpoint an earlier run of the job left.
	Resume bool
	// Epoch fences the run in cluster mode: the node's claim on the job,
	// larger for every newer claim (0 on a single node: no fence). The
	// family records it in its target-side checkpoint when the run opens,
	// refusing to open under a newer one, and checks it in every target
	// transaction that commits rows or checkpoints, so a run whose node
	// lost the job (paused, cut off from etcd) cannot commit once another
	// node took over: those commits fail with ErrFenced.
	Epoch int64
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
