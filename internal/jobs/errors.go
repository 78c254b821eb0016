package jobs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNotFound: no job has the id.
var ErrNotFound = errors.New("the migration job does not exist")

// ErrStore wraps every failure of the store, so the API can tell the DBA it
// was opendts's own database that failed.
var ErrStore = errors.New("the job store failed")

// ErrStoreUnavailable is wrapped by a shared store's failures while it
// cannot be reached (etcd without a majority): nothing was changed, and
// the cure is bringing the store back, not the disk.
var ErrStoreUnavailable = errors.New("the job store is unavailable")

// StatusError refuses an event in the job's current status.
type StatusError struct {
	JobID  string
	Status Status
	Event  Event
}

func (e *StatusError) Error() string {
	var allowed []int
	for from, events := range transitions {
		if _, ok := events[e.Event]; ok {
			allowed = append(allowed, int(from))
		}
	}
	slices.Sort(allowed)
	names := make([]string, len(allowed))
	for i, s := range allowed {
		names[i] = fmt.Sprint(s)
	}
	return fmt.Sprintf("%s is not allowed while job %s is at status %s; it is allowed at status %s",
		e.Event, e.JobID, e.Status, strings.Join(names, ", "))
}

// DuplicateError refuses to start a job whose target objects another job
// writes now (duplicate.go has the rule).
type DuplicateError struct {
	Other       string
	OtherStatus Status
	Target      string
	Overlap     string
}

func (e *DuplicateError) Error() string {
	other := "job " + e.Other
	if e.OtherStatus != 0 {
		other += fmt.Sprintf(" (status %s)", e.OtherStatus)
	}
	return fmt.Sprintf("%s already migrates %s into the target instance %s; wait until it ends, stop it, or choose other objects",
		other, e.Overlap, e.Target)
}

// InvalidError is a parameter the job cannot take. Value distinguishes a
// well-formed value out of range or unknown (InvalidParameterValue) from a
// malformed or contradictory one (InvalidParameter).
type InvalidError struct {
	Param   string
	Message string
	Value   bool
}

func (e *InvalidError) Error() string { return e.Message }

func invalid(param, format string, args ...any) error {
	return &InvalidError{Param: param, Message: fmt.Sprintf(format, args...)}
}

func invalidValue(param, format string, args ...any) error {
	return &InvalidError{Param: param, Message: fmt.Sprintf(format, args...), Value: true}
}
