package jobs

import "fmt"

// Status is a job's status, numbered as the API numbers it.
type Status int

// The statuses opendts uses. 2 (created, old documents only) is never set.
const (
	StatusCreated        Status = 1
	StatusChecking       Status = 3
	StatusCheckPassed    Status = 4
	StatusCheckFailed    Status = 5
	StatusReadyRun       Status = 6
	StatusRunning        Status = 7
	StatusReadyComplete  Status = 8
	StatusSuccess        Status = 9
	StatusFailed         Status = 10
	StatusStopping       Status = 11
	StatusCompleting     Status = 12
	statusCreatedOldDocs Status = 2
)

var statusNames = map[Status]string{
	StatusCreated:        "created",
	statusCreatedOldDocs: "created",
	StatusChecking:       "checking",
	StatusCheckPassed:    "check passed",
	StatusCheckFailed:    "check failed",
	StatusReadyRun:       "waiting for its scheduled start",
	StatusRunning:        "running",
	StatusReadyComplete:  "ready to complete",
	StatusSuccess:        "succeeded",
	StatusFailed:         "failed",
	StatusStopping:       "stopping",
	StatusCompleting:     "completing",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%d (%s)", int(s), n)
	}
	return fmt.Sprintf("%d (unknown)", int(s))
}

// Event is something that moves a job: an API call or an outcome of work.
type Event string

// Events. The ones named after actions are what clients ask for; the
// others are what the scheduler and engines report.
const (
	EventModify      Event = "ModifyMigrateJob"
	EventCheck       Event = "CreateMigrateCheckJob"
	EventStart       Event = "StartMigrateJob"
	EventStop        Event = "StopMigrateJob"
	EventComplete    Event = "CompleteMigrateJob"
	EventDelete      Event = "DeleteMigrateJob"
	EventCheckPassed Event = "check passed"
	EventCheckFailed Event = "check failed"
	EventSchedule    Event = "scheduled start"
	EventRun         Event = "expect time reached"
	EventCaughtUp    Event = "caught up"
	EventSucceeded   Event = "succeeded"
	EventFailed      Event = "failed"
	EventStopped     Event = "stopped"
)

// deleted is the target of EventDelete: the job is gone.
const deleted Status = 0

// transitions is the whole status machine: from a status, the events allowed
// and where each leads. Anything not listed is refused.
var transitions = map[Status]map[Event]Status{
	StatusCreated: {
		EventModify: StatusCreated, EventCheck: StatusChecking, EventDelete: deleted,
	},
	StatusChecking: {
		EventCheckPassed: StatusCheckPassed, EventCheckFailed: StatusCheckFailed,
	},
	StatusCheckPassed: {
		EventModify: StatusCreated, EventCheck: StatusChecking, EventDelete: deleted,
		EventStart: StatusRunning, EventSchedule: StatusReadyRun,
	},
	StatusCheckFailed: {
		EventModify: StatusCreated, EventCheck: StatusChecking, EventDelete: deleted,
	},
	StatusReadyRun: {
		EventRun: StatusRunning, EventStop: StatusStopping, EventDelete: deleted,
	},
	StatusRunning: {
		EventCaughtUp: StatusReadyComplete, EventSucceeded: StatusSuccess,
		EventFailed: StatusFailed, EventStop: StatusStopping,
	},
	StatusReadyComplete: {
		EventComplete: StatusCompleting, EventStop: StatusStopping, EventFailed: StatusFailed,
	},
	StatusSuccess: {
		EventDelete: deleted,
	},
	StatusFailed: {
		EventModify: StatusCreated, EventDelete: deleted,
	},
	// A migration that finished as the stop came succeeded: what happened
	// wins over what was asked (runner.go runMigration).
	StatusStopping: {
		EventStopped: StatusFailed, EventFailed: StatusFailed, EventSucceeded: StatusSuccess,
	},
	StatusCompleting: {
		EventSucceeded: StatusSuccess, EventFailed: StatusFailed,
	},
}

// Next returns where event leads from status, and whether it is allowed.
func Next(from Status, event Event) (Status, bool) {
	to, ok := transitions[from][event]
	return to, ok
}

// unfinished reports whether a job still holds its target objects: every
// status but success and failure.
func (s Status) unfinished() bool {
	return s != StatusSuccess && s != StatusFailed
}

// active reports whether work is in flight for the job (a check or a
// migration), so the scheduler must resume it after a restart.
func (s Status) active() bool {
	switch s {
	case StatusChecking, StatusReadyRun, StatusRunning, StatusReadyComplete, StatusStopping, StatusCompleting:
		return true
	}
	return false
}

// migrating reports whether an engine may be reporting progress for the job.
func (s Status) migrating() bool {
	return s == StatusRunning || s == StatusReadyComplete || s == StatusCompleting
}
