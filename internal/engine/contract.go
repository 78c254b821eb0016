package engine

import "context"

// Engine is what a database family implements: its check, and a
// migration made of the units below. A family that cannot migrate does not
// compile as an Engine.
type Engine interface {
	Checker
	// Open connects to a job's servers for one run of its migration.
	// The driver calls the run's units in order and Close at the end.
	Open(ctx context.Context, spec Spec) (Migration, error)
}

// Phase is where a migration is, saved on the target so that a restart
// resumes there. The driver walks them in this order, skipping those the
// job's MigrateType does not have.
type Phase string

// The phases, in order.
const (
	PhaseNew         Phase = ""
	PhaseStructure   Phase = "structure"
	PhaseCopy        Phase = "copy"
	PhaseObjects     Phase = "objects"
	PhaseIncremental Phase = "incremental"
	// PhaseFinal creates what must not act while changes are applied
	// (triggers, events) after the last change.
	PhaseFinal Phase = "final"
	PhaseDone  Phase = "done"
)

// Checkpoint is a run's phase state. A family keeps it on its target, in
// the transactions that write the data it describes where it can, so a
// restart never loses or repeats work.
type Checkpoint interface {
	// LoadPhase returns the phase saved by an earlier run of the job, or
	// PhaseNew.
	LoadPhase(ctx context.Context) (Phase, error)
	SavePhase(ctx context.Context, p Phase) error
	// Forget drops what an earlier run left: a fresh start.
	Forget(ctx context.Context) error
	// Finish tidies the checkpoint of a job that succeeded, keeping the
	// mark that it is done.
	Finish(ctx context.Context) error
}

// CopyReport is how the copy unit tells the driver where it is.
type CopyReport interface {
	// Snapshotted says the consistent snapshot is taken and rows start
	// moving.
	Snapshotted()
	// Copied gives the share of rows copied, 0..100.
	Copied(pct int)
	// Table gives one table's progress: once for each table before its
	// rows move (RowsDone then counts what earlier runs committed, the
	// baseline of its rate), then after each chunk committed. It may be
	// called from several goroutines and must stay cheap; the reports of
	// chunks committed at once may arrive out of order, so a receiver
	// keeps a table's largest RowsDone, and Done once it is set.
	Table(p TableProgress)
}

// TableProgress is where the copy of one table is.
type TableProgress struct {
	Table TableRef
	// RowsDone counts the rows committed on the target, those of chunks
	// committed by an earlier run of the job included; RowsTotal is the
	// estimate made when the copy was planned (RowsDone may pass it).
	RowsDone, RowsTotal int64
	// Done says every chunk of the table is committed.
	Done bool
}

// Migration is one run of a job on a family's servers: the units the
// driver sequences. Each method is called at most once per run, in the
// order the phases give; a resumed run skips the phases done.
type Migration interface {
	Checkpoint
	// Prepare resolves the selection on the source; the driver calls it
	// before any unit.
	Prepare(ctx context.Context) error
	// HoldReadOnly makes the target read-only to ordinary users for the
	// run (DstInfo.ReadOnly=1) and returns what restores the DBA's
	// setting; RestoreReadOnly restores it for a job found done.
	HoldReadOnly(ctx context.Context) (restore func(), err error)
	RestoreReadOnly(ctx context.Context) error
	// Structure creates the schema objects the rows need; progress gets
	// done and total counts.
	Structure(ctx context.Context, progress func(done, total int)) error
	// Copy takes a consistent snapshot and copies the rows, resuming from
	// committed chunks.
	Copy(ctx context.Context, report CopyReport) error
	// Objects creates what is built after the rows (indexes, routines),
	// and with active also what acts on changes (triggers, events).
	Objects(ctx context.Context, active bool) error
	// FinalObjects creates, after the last change of a full +
	// incremental job, what acts on changes.
	FinalObjects(ctx context.Context) error
	// OpenStream prepares the change stream of a full + incremental job.
	OpenStream(ctx context.Context) (ChangeStream, error)
	// Verifier compares source and target for ConsistencyType.
	Verifier
	// Retry is the family's policy for the driver's restarts.
	Retry() RetryPolicy
	Close()
}

// Verifier compares a table on source and target, each server computing
// its own figures.
type Verifier interface {
	// VerifyTables lists the tables the check covers, as "db.table".
	VerifyTables() []TableRef
	VerifyCount(ctx context.Context, t TableRef) (TableVerification, error)
	// VerifyContent compares pct % of the table's ranges by checksum and
	// narrows differing ranges to keys.
	VerifyContent(ctx context.Context, t TableRef, pct int) (TableVerification, error)
}

// TableRef names a table of the source (Schema empty where the family has
// no schemas).
type TableRef struct {
	Database, Schema, Table string
}

// String is the table's name as a DBA writes it, unquoted.
func (t TableRef) String() string {
	if t.Schema != "" {
		return t.Database + "." + t.Schema + "." + t.Table
	}
	return t.Database + "." + t.Table
}

// StepDef names one step of a migration, in the order the driver runs
// them.
type StepDef struct {
	// ID is the English identifier (structure, dumper, loader, objects,
	// sinker, verify); Name is what a DBA reads.
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
	// TableProgress passes on the copy's progress of one table
	// (CopyReport.Table); called often, from several goroutines.
	TableProgress(p TableProgress)
}

// Complete modes of CompleteMigrateJob.
const (
	CompleteWaitForSync = "waitForSync"
	CompleteImmediately = "immediately"
)
