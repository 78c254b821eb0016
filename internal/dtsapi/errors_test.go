package dtsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/jobs"
)

// leak matches what must never reach a client: Go's own words for types
// and values, fmt's complaints, pointers.
var leak = regexp.MustCompile(`\*?\bjobs\.[A-Z]|\bengine\.[A-Z]|\bGo (struct|value)\b|%!|<nil>|0x[0-9a-f]{6,}|\bfmt\.|errors\.`)

// testPassword is in errors of the table below the way a careless wrap
// would carry it; no message may show it.
const testPassword = "S3cret-pw!"

// storeDecodeError is the error the store returns for a stored job it
// cannot read, built the way store.query builds it.
func storeDecodeError() error {
	var j jobs.Job
	err := json.Unmarshal([]byte(`{"Status":"running"}`), &j)
	return fmt.Errorf("%w: %s: %w", jobs.ErrStore, "list jobs", fmt.Errorf("decode stored job: %w", err))
}

// TestToAPIError maps every error the job service returns, wrapped as the
// service wraps it, onto the documented code (spec section 2, "error
// codes"), with a message that says what to do and shows no Go internals.
func TestToAPIError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code string
		// says are words the message must hold: the fact and what to do.
		says []string
	}{
		{"not found", jobs.ErrNotFound, "ResourceNotFound.JobNotExist", []string{"does not exist"}},
		{"not found, wrapped", fmt.Errorf("get job: %w", jobs.ErrNotFound), "ResourceNotFound.JobNotExist", []string{"does not exist"}},
		{"status", &jobs.StatusError{JobID: "dts-abc", Status: jobs.StatusRunning, Event: jobs.EventModify},
			"FailedOperation.NotAllowOperation", []string{"ModifyMigrateJob", "dts-abc", "status 7 (running)", "allowed at status 1, 4, 5, 10"}},
		{"status, start", &jobs.StatusError{JobID: "dts-abc", Status: jobs.StatusCreated, Event: jobs.EventStart},
			"FailedOperation.NotAllowOperation", []string{"StartMigrateJob", "status 1 (created)", "allowed at status 4"}},
		{"status, complete", fmt.Errorf("complete: %w", &jobs.StatusError{JobID: "dts-abc", Status: jobs.StatusRunning, Event: jobs.EventComplete}),
			"FailedOperation.NotAllowOperation", []string{"CompleteMigrateJob", "allowed at status 8"}},
		{"status, delete", &jobs.StatusError{JobID: "dts-abc", Status: jobs.StatusRunning, Event: jobs.EventDelete},
			"FailedOperation.NotAllowOperation", []string{"DeleteMigrateJob", "status 7", "allowed at status 1, 4, 5, 6, 9, 10"}},
		{"duplicate", &jobs.DuplicateError{Other: "dts-other", Target: "10.0.0.2:3306", Overlap: "database shop"},
			"InternalError.DuplicateJob", []string{"dts-other", "10.0.0.2:3306", "shop", "wait until it ends, stop it, or choose other objects"}},
		{"invalid parameter", &jobs.InvalidError{Param: "JobName", Message: "JobName must not be empty"},
			cloudapi.CodeInvalidParameter, []string{"JobName must not be empty"}},
		{"invalid value", &jobs.InvalidError{Param: "MigrateOption.RunMode", Message: "MigrateOption.RunMode must be 1 (run now) or 2 (scheduled), not 3", Value: true},
			cloudapi.CodeInvalidParamValue, []string{"RunMode", "not 3"}},
		{"invalid, wrapped", fmt.Errorf("modify: %w", &jobs.InvalidError{Param: "DstInfo.Region", Message: "the target's region cannot be modified (it is \"ap-guangzhou\"); create a new job instead"}),
			cloudapi.CodeInvalidParameter, []string{"The target's region", "create a new job"}},
		{"store", fmt.Errorf("%w: %s: %w", jobs.ErrStore, "update job", errors.New("database or disk is full (13)")),
			"InternalError.DatabaseError", []string{"job store failed: update job: database or disk is full (13).", "Check the disk"}},
		{"store, damaged job", storeDecodeError(), "InternalError.DatabaseError", []string{"job store", "damaged", "Check the disk"}},
		{"too many unused", fmt.Errorf("%w (%d; at most %d): start or delete some", jobs.ErrTooManyUnused, 1000, 1000),
			"LimitExceeded.MaxUnusedJobs", []string{"1000", "start or delete some"}},
		{"shutting down", jobs.ErrShuttingDown, cloudapi.CodeServiceUnavailable, []string{"shutting down", "retry"}},
		{"shutting down, complete", fmt.Errorf("%w: job %s has no running migration to complete", jobs.ErrShuttingDown, "dts-abc"),
			cloudapi.CodeServiceUnavailable, []string{"retry"}},
		{"API error passes", cloudapi.Errorf(cloudapi.CodeMissingParameter, "The request is missing a required parameter `JobId`."),
			cloudapi.CodeMissingParameter, []string{"JobId"}},
		{"API error, wrapped", fmt.Errorf("decode: %w", cloudapi.Errorf(cloudapi.CodeUnknownParameter, "The parameter `Foo` is not defined.")),
			cloudapi.CodeUnknownParameter, []string{"Foo"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cloudapi.AsError(toAPIError(tc.err))
			if got == nil {
				t.Fatalf("toAPIError(%v) is no API error: the client would see InternalError", tc.err)
			}
			if got.Code != tc.code {
				t.Errorf("code %s, want %s (message %q)", got.Code, tc.code, got.Message)
			}
			checkMessage(t, got.Message)
			for _, w := range tc.says {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message %q does not say %q", got.Message, w)
				}
			}
		})
	}
}

// checkMessage: a sentence, for a person, with nothing of Go's or a
// password in it.
func checkMessage(t *testing.T, msg string) {
	t.Helper()
	// "opendts" is a name, spelt in lower case.
	if msg == "" || (strings.ToUpper(msg[:1]) != msg[:1] && !strings.HasPrefix(msg, "opendts")) || !strings.HasSuffix(msg, ".") {
		t.Errorf("message %q is not a sentence (capital first, full stop last)", msg)
	}
	if strings.HasSuffix(msg, "..") {
		t.Errorf("message %q ends in two full stops", msg)
	}
	if m := leak.FindString(msg); m != "" {
		t.Errorf("message %q shows Go internals (%q)", msg, m)
	}
	if strings.Contains(msg, testPassword) {
		t.Errorf("message %q shows a password", msg)
	}
}

// TestToAPIErrorUnknown: an error the mapper does not know stays what it
// is, so the server answers InternalError with only the RequestId and
// logs the cause; its text (which may hold anything, a password in a DSN
// included) never becomes a message.
func TestToAPIErrorUnknown(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		context.DeadlineExceeded,
		fmt.Errorf("dial root:%s@tcp(10.0.0.1:3306)/: refused", testPassword),
		errors.New("something unexpected"),
	} {
		if got := cloudapi.AsError(toAPIError(err)); got != nil {
			t.Errorf("toAPIError(%q) = %s %q; want the error left for the server to answer as InternalError", err, got.Code, got.Message)
		}
	}
}

// TestStatusErrorsFromTheTable: every refused (status, action) pair gives
// a NotAllowOperation message naming the statuses where the action is
// allowed, so the client knows what to wait for.
func TestStatusErrorsFromTheTable(t *testing.T) {
	statuses := []jobs.Status{jobs.StatusCreated, jobs.StatusChecking, jobs.StatusCheckPassed, jobs.StatusCheckFailed,
		jobs.StatusReadyRun, jobs.StatusRunning, jobs.StatusReadyComplete, jobs.StatusSuccess, jobs.StatusFailed,
		jobs.StatusStopping, jobs.StatusCompleting}
	actions := []jobs.Event{jobs.EventModify, jobs.EventCheck, jobs.EventStart, jobs.EventStop, jobs.EventComplete, jobs.EventDelete}
	for _, st := range statuses {
		for _, ev := range actions {
			if _, ok := jobs.Next(st, ev); ok {
				continue
			}
			got := cloudapi.AsError(toAPIError(&jobs.StatusError{JobID: "dts-x", Status: st, Event: ev}))
			if got == nil || got.Code != "FailedOperation.NotAllowOperation" {
				t.Errorf("%s at %s: %v", ev, st, got)
				continue
			}
			checkMessage(t, got.Message)
			if !strings.Contains(got.Message, "it is allowed at status ") {
				t.Errorf("%s at %s: %q names no status where it is allowed", ev, st, got.Message)
			}
		}
	}
}
