package dtsapi

// Input types: every field a pointer, so that "not sent" and "sent empty"
// differ (ModifyMigrateJob keeps what was not sent). JSON names are the
// API's; cloudapi.Params.Decode fills them from any encoding.

type migrateOptionIn struct {
	RunMode           *int64
	ExpectTime        *string
	MigrateType       *int64
	MigrateObject     *int64
	ConsistencyType   *int64
	IsOverrideRoot    *int64
	ExternParams      *string
	ConsistencyParams *consistencyParamsIn
}

type consistencyParamsIn struct {
	SelectRowsPerTable *int64
	TablesSelectAll    *int64
	TablesSelectCount  *int64
}

type srcInfoIn struct {
	AccessKey     *string
	Ip            *string
	Port          *int64
	User          *string
	Password      *string
	RdsInstanceId *string
	CvmInstanceId *string
	UniqDcgId     *string
	VpcId         *string
	SubnetId      *string
	UniqVpnGwId   *string
	InstanceId    *string
	Region        *string
	Supplier      *string
	CcnId         *string
	EngineVersion *string
}

type dstInfoIn struct {
	InstanceId *string
	Region     *string
	Ip         *string
	Port       *int64
	ReadOnly   *int64
	User       *string
	Password   *string
}

type tagItemIn struct {
	TagKey   *string
	TagValue *string
}

type tagFilterIn struct {
	TagKey   *string
	TagValue []string
}

type createMigrateJobRequest struct {
	JobName         *string
	MigrateOption   *migrateOptionIn
	SrcDatabaseType *string
	SrcAccessType   *string
	SrcInfo         *srcInfoIn
	DstDatabaseType *string
	DstAccessType   *string
	DstInfo         *dstInfoIn
	DatabaseInfo    *string
	Tags            []tagItemIn
	SrcNodeType     *string
	SrcInfoMulti    []srcInfoIn
}

type modifyMigrateJobRequest struct {
	JobId         *string
	JobName       *string
	MigrateOption *migrateOptionIn
	SrcAccessType *string
	SrcInfo       *srcInfoIn
	DstAccessType *string
	DstInfo       *dstInfoIn
	DatabaseInfo  *string
	// The document says the database types cannot change; a client that
	// sends them anyway is told so, rather than that they are unknown.
	SrcDatabaseType *string
	DstDatabaseType *string
	SrcNodeType     *string
	SrcInfoMulti    []srcInfoIn
}

type jobIDRequest struct {
	JobId *string
}

type completeMigrateJobRequest struct {
	JobId        *string
	CompleteMode *string
}

type describeMigrateJobsRequest struct {
	JobId      *string
	JobName    *string
	Order      *string
	OrderSeq   *string
	Offset     *int64
	Limit      *int64
	TagFilters []tagFilterIn
}

type emptyRequest struct{}

// Output types: exact API types (the official SDKs reject a number where
// they expect a string), no pointers, passwords never present.

type migrateOptionOut struct {
	RunMode           int64
	ExpectTime        string
	MigrateType       int64
	MigrateObject     int64
	ConsistencyType   int64
	IsOverrideRoot    int64
	ExternParams      string
	ConsistencyParams consistencyParamsOut
}

type consistencyParamsOut struct {
	SelectRowsPerTable int64
	TablesSelectAll    int64
	TablesSelectCount  int64
}

type srcInfoOut struct {
	AccessKey     string
	Ip            string
	Port          int64
	User          string
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

type dstInfoOut struct {
	InstanceId string
	Region     string
	Ip         string
	Port       int64
	ReadOnly   int64
	User       string
}

type stepOut struct {
	StepNo    int64
	StepName  string
	StepId    string
	Status    int64
	StartTime string
}

type detailOut struct {
	StepAll             int64
	StepNow             int64
	Progress            string
	CurrentStepProgress string
	MasterSlaveDistance int64
	SecondsBehindMaster int64
	StepInfo            []stepOut
	// WaitingForWorker is an opendts extension: the running job waits for
	// a copy worker of the node's budget (serve -max-copy-workers), every
	// one being busy with other jobs. SDKs ignore it.
	WaitingForWorker bool `json:",omitempty"`
}

type errorInfoOut struct {
	ErrorLog string
	HelpDoc  string
}

type tagItemOut struct {
	TagKey   string
	TagValue string
}

type migrateJobInfo struct {
	JobId           string
	JobName         string
	MigrateOption   migrateOptionOut
	SrcDatabaseType string
	SrcAccessType   string
	SrcInfo         srcInfoOut
	DstDatabaseType string
	DstAccessType   string
	DstInfo         dstInfoOut
	DatabaseInfo    string
	CreateTime      string
	StartTime       string
	EndTime         string
	Status          int64
	Detail          detailOut
	ErrorInfo       []errorInfoOut
	Tags            []tagItemOut
	SrcNodeType     string
	SrcInfoMulti    []srcInfoOut
	// ConsistencyResult is an opendts extension: the consistency check's
	// findings per table (ConsistencyType 2, 3, 4). SDKs ignore it.
	ConsistencyResult []consistencyOut
	// CopyProgress and TableProgress are opendts extensions: where the
	// copy of rows is, for the job and table by table (TableProgress
	// lists at most 40 tables: jobs.CopyProgress.Tables).
	CopyProgress  copyProgressOut
	TableProgress []tableProgressOut
	// Node is an opendts extension: in cluster mode, the node that owns
	// the job's work now (empty when none does, and on a single node).
	Node string
}

type copyProgressOut struct {
	RowsDone      int64
	RowsTotal     int64
	RowsPerSecond int64
	EtaSeconds    int64
	TablesDone    int64
	TablesTotal   int64
}

type tableProgressOut struct {
	Database      string
	Schema        string
	Table         string
	RowsDone      int64
	RowsTotal     int64
	RowsPerSecond int64
	Status        string
}

type consistencyOut struct {
	Database    string
	Table       string
	Method      string
	Rows        int64
	Differences int64
	FirstKeys   []string
	Detail      string
}

type checkItemOut struct {
	Name    string
	Result  string
	Message string
	Advice  string
}
