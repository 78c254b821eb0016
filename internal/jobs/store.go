package jobs

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Store keeps jobs. Implementations return ErrNotFound for a missing id;
// every other error is a failure of the store itself. The SQLite store
// (internal/store) implements it; a cluster store (etcd) can implement it
// next to it: nothing in this package knows which one it runs on.
//
// Passwords: only GetJob returns them; GetJobState keeps them sealed. Jobs
// from ListJobs and WritingInto come without, so they are for showing and
// comparing, never for UpdateJob; they are also read-only (a store may
// share their slices between calls).
type Store interface {
	// CreateJob inserts a new job; ErrExists when its id is taken.
	CreateJob(ctx context.Context, j *Job) error
	// GetJob reads one job, passwords included: for checking or running
	// it, and for Modify (which keeps the passwords not sent).
	GetJob(ctx context.Context, id string) (*Job, error)
	// GetJobState reads one job without unsealing its passwords (they stay
	// sealed in Job.Sealed): for status changes and showing it.
	GetJobState(ctx context.Context, id string) (*Job, error)
	// UpdateJob replaces a stored job read with GetJob or GetJobState; the
	// passwords stored are j.Sealed when set, else j's own, sealed.
	UpdateJob(ctx context.Context, j *Job) error
	// DeleteJob removes a job; when ctx carries a revision (IfRevision),
	// only while the job is still at it (ErrConflict otherwise).
	DeleteJob(ctx context.Context, id string) error
	// ListJobs selects, orders and pages jobs (without passwords) and
	// counts all that match.
	ListJobs(ctx context.Context, q Query) ([]*Job, int, error)
	// CountByStatus counts the jobs at each status, or only at the
	// statuses given.
	CountByStatus(ctx context.Context, only ...Status) (map[Status]int, error)
	// WritingInto returns the unfinished jobs (without passwords) whose
	// ConflictKeys target is one of targets and which select one of
	// databases or the whole instance; every unfinished job of those
	// targets when databases is empty. It may return more, never fewer.
	WritingInto(ctx context.Context, targets, databases []string) ([]*Job, error)
	// SaveProgress records a migrating job's progress and lag, and its
	// copy's summary when p.Copy is set (only while its status is one of
	// MigratingStatuses), without rewriting the rest of the job.
	SaveProgress(ctx context.Context, id string, p Progress) error
}

// ErrExists: a new job's id is taken.
var ErrExists = errors.New("a migration job with this id exists")

// Query selects and orders jobs for DescribeMigrateJobs.
type Query struct {
	JobID string
	// JobName matches jobs whose name contains it.
	JobName string
	// Statuses keeps jobs at one of them (all when empty).
	Statuses []Status
	// Order is one of JobId, Status, JobName, MigrateType, RunMode,
	// CreateTime; Desc reverses it.
	Order  string
	Desc   bool
	Offset int
	// Limit caps the jobs returned; 0 or less returns every match.
	Limit int
	Tags  []TagFilter
}

// TagFilter keeps jobs that carry Key with one of Values (any value when
// Values is empty).
type TagFilter struct {
	Key    string
	Values []string
}

// Progress is what a running migration reports often: Detail's Progress,
// CurrentStepProgress, SecondsBehindMaster and MasterSlaveDistance (MB).
// HasProgress and HasLag say which of the two pairs is set.
type Progress struct {
	Overall, Current        int
	HasProgress             bool
	LagSeconds, LagMegabyte int64
	HasLag                  bool
	// Copy, when set, is the copy's summary to store as the job's
	// Detail.Copy.
	Copy *CopyProgress
	// ended is when the migration ended (zero while it runs); kept in
	// memory only.
	ended time.Time
}

// Ended reports whether the migration has ended.
func (p Progress) Ended() bool { return !p.ended.IsZero() }

// ConflictKeys are what a store indexes for the duplicate-job check: the
// target instance as the job names it ("cdb:" and its InstanceId, or its
// lowercased host:port) and the databases its selection writes into (one
// "" for the whole instance). A selection that does not parse gives no
// databases: such a job conflicts with nothing, as before it is fixed.
func ConflictKeys(j *Job) (target string, databases []string) {
	target = addressKey(j.Dst.Ip, j.Dst.Port)
	if j.DstAccessType == "cdb" {
		target = "cdb:" + j.Dst.InstanceId
	}
	objects, _, err := ParseDatabaseInfo(j.SrcDatabaseType, j.DatabaseInfo)
	if err != nil {
		return target, nil
	}
	if len(objects) == 0 {
		return target, []string{""}
	}
	for _, o := range objects {
		if !slices.Contains(databases, o.Database) {
			databases = append(databases, o.Database)
		}
	}
	return target, databases
}

func addressKey(host string, port int) string {
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))
}
