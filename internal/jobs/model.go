package jobs

import (
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// Job is a migration job as the service keeps it. Field names follow the
// API's so that mapping stays obvious; passwords are plain here and sealed
// by the store.
type Job struct {
	ID     string
	Name   string
	Option MigrateOption

	SrcDatabaseType string
	SrcAccessType   string
	Src             SrcInfo
	DstDatabaseType string
	DstAccessType   string
	Dst             DstInfo
	// DatabaseInfo is the selection as the client sent it (normalised JSON),
	// "[]" for a whole instance.
	DatabaseInfo string
	Tags         []Tag
	SrcNodeType  string
	SrcInfoMulti []SrcInfo

	Status     Status
	CreateTime time.Time
	StartTime  time.Time
	EndTime    time.Time

	Detail    Detail
	ErrorInfo []ErrorInfo
	Check     CheckResult
	// Verification is the consistency check's result, table by table.
	Verification []TableVerification

	// Sealed is set by a store that read the job without its passwords
	// (Store.GetJobState): their sealed form, which UpdateJob stores back
	// unchanged. Empty when the passwords are in the job.
	Sealed string `json:"-"`
	// CompleteMode is the mode CompleteMigrateJob asked for, kept while
	// the job completes so that a node taking the job over completes it
	// the same way.
	CompleteMode string `json:",omitempty"`
	// Revision is the store's version of the job as read (0 when the
	// store does not keep one); see ErrConflict.
	Revision int64 `json:"-"`
	// Node is the cluster node that owns the job's work now (empty on a
	// single node, or when no node runs it); set when the job is shown,
	// never stored.
	Node string `json:"-"`
}

// MigrateOption mirrors the API's MigrateOption.
type MigrateOption struct {
	RunMode           int
	ExpectTime        string
	MigrateType       int
	MigrateObject     int
	ConsistencyType   int
	IsOverrideRoot    int
	ExternParams      string
	ConsistencyParams ConsistencyParams
}

// ConsistencyParams mirrors the API's sampling parameters.
type ConsistencyParams struct {
	SelectRowsPerTable int
	TablesSelectAll    int
	TablesSelectCount  int
}

// SrcInfo mirrors the API's SrcInfo.
type SrcInfo struct {
	AccessKey     string
	Ip            string
	Port          int
	User          string
	Password      string `json:"-"`
	RdsInstanceId string
	CvmInstanceId string
	UniqDcgId     string
	VpcId         string
	SubnetId      string
	UniqVpnGwId   string
	InstanceId    string
	Region        string
	Supplier      string
	CcnId         string
	EngineVersion string
}

// DstInfo mirrors the API's DstInfo.
type DstInfo struct {
	InstanceId string
	Region     string
	Ip         string
	Port       int
	ReadOnly   int
	User       string
	Password   string `json:"-"`
}

// Tag is a key and value attached to a job.
type Tag struct {
	Key   string
	Value string
}

// Detail is what DescribeMigrateJobs shows of a running job.
type Detail struct {
	StepAll             int
	StepNow             int
	Progress            int
	CurrentStepProgress int
	MasterSlaveDistance int64
	SecondsBehindMaster int64
	Steps               []Step
	// Copy is where the copy of rows is, table by table (nil before a
	// copy reports).
	Copy *CopyProgress `json:",omitempty"`
	// WaitingForWorker: the job has chunks to copy and every slot of the
	// node's copy-worker budget is held by other jobs. Read at the
	// moment, never stored.
	WaitingForWorker bool `json:"-"`
}

// Step statuses, as the API numbers them.
const (
	StepDefault   = 0
	StepSucceeded = 1
	StepFailed    = 2
	StepRunning   = 3
	StepNotRun    = 4
)

// Step is one MigrateStepDetailInfo.
type Step struct {
	No        int
	Name      string
	ID        string
	Status    int
	StartTime time.Time
}

// ErrorInfo is one entry of a job's error list.
type ErrorInfo struct {
	ErrorLog string
	HelpDoc  string
}

// Check statuses of DescribeMigrateCheckJob.
const (
	CheckUnavailable = "unavailable"
	CheckStarting    = "starting"
	CheckRunning     = "running"
	CheckFinished    = "finished"
)

// Check flags of DescribeMigrateCheckJob.
const (
	CheckFlagFailed     = 0
	CheckFlagPassed     = 1
	CheckFlagNotChecked = 3
)

// CheckResult is the latest pre-migration check of a job.
type CheckResult struct {
	Status    string
	Progress  int
	Flag      int
	ErrorCode int
	Message   string
	Items     []CheckItem
	StartTime time.Time
	EndTime   time.Time
}

// CheckItem is one verdict of a check, as stored with the job and shown
// by DescribeMigrateCheckJob. The job's own type, so that the stored JSON
// does not change with an engine's.
type CheckItem struct {
	Name    string
	Result  string
	Message string
	Advice  string
}

// TableVerification is the consistency check's finding for one table, as
// stored with the job (ConsistencyResult in DescribeMigrateJobs).
type TableVerification struct {
	Database    string
	Table       string
	Method      string
	Rows        int64
	Differences int64
	FirstKeys   []string
	Detail      string `json:",omitempty"`
}

// The API's numbers that the service and the API layer name.
const (
	MigrateObjectWholeInstance = int(engine.MigrateObjectWholeInstance)
	MigrateObjectSelected      = int(engine.MigrateObjectSelected)
	CompleteWaitForSync        = engine.CompleteWaitForSync
	CompleteImmediately        = engine.CompleteImmediately
)

func checkItemsOf(items []engine.CheckItem) []CheckItem {
	out := make([]CheckItem, len(items))
	for i, it := range items {
		out[i] = CheckItem(it)
	}
	return out
}

func verificationsOf(tables []engine.TableVerification) []TableVerification {
	out := make([]TableVerification, len(tables))
	for i, t := range tables {
		out[i] = TableVerification(t)
	}
	return out
}

// resetCheck is the check state of a job that was never checked (or was
// modified since).
func resetCheck() CheckResult {
	return CheckResult{Status: CheckUnavailable, Flag: CheckFlagNotChecked}
}
