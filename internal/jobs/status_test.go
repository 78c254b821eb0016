package jobs

import (
	"fmt"
	"testing"
)

// TestStatusTable enumerates every (status, event) pair against the rules
// written out here independently of the table in status.go.
func TestStatusTable(t *testing.T) {
	statuses := []Status{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	events := []Event{EventModify, EventCheck, EventStart, EventStop, EventComplete, EventDelete,
		EventCheckPassed, EventCheckFailed, EventSchedule, EventRun, EventCaughtUp, EventSucceeded, EventFailed, EventStopped}
	// want[event] = "from→to" pairs; absent pairs are refused.
	want := map[Event]map[Status]Status{
		// The original document: Modify at 1, 4, 5, 10, back to 1.
		EventModify: {1: 1, 4: 1, 5: 1, 10: 1},
		EventCheck:  {1: 3, 4: 3, 5: 3},
		EventStart:  {4: 7},
		// Stop: running, ready to complete, or waiting for a scheduled start.
		EventStop:     {6: 11, 7: 11, 8: 11},
		EventComplete: {8: 12},
		// Delete: never while checking, running, ready, stopping, completing.
		EventDelete:      {1: 0, 4: 0, 5: 0, 6: 0, 9: 0, 10: 0},
		EventCheckPassed: {3: 4},
		EventCheckFailed: {3: 5},
		EventSchedule:    {4: 6},
		EventRun:         {6: 7},
		EventCaughtUp:    {7: 8},
		// 11: the engine finished before it saw the stop.
		EventSucceeded: {7: 9, 11: 9, 12: 9},
		EventFailed:    {7: 10, 8: 10, 11: 10, 12: 10},
		EventStopped:   {11: 10},
	}
	for _, from := range statuses {
		for _, ev := range events {
			t.Run(fmt.Sprintf("%d %s", from, ev), func(t *testing.T) {
				to, ok := Next(from, ev)
				wantTo, wantOK := want[ev][from]
				if ok != wantOK || (ok && to != wantTo) {
					t.Errorf("Next(%d, %s) = %d, %v; want %d, %v", from, ev, to, ok, wantTo, wantOK)
				}
			})
		}
	}
}

func TestStatusErrorNamesStates(t *testing.T) {
	err := &StatusError{JobID: "dts-abcdefgh", Status: StatusRunning, Event: EventModify}
	want := "ModifyMigrateJob is not allowed while job dts-abcdefgh is at status 7 (running); it is allowed at status 1, 4, 5, 10"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err.Error(), want)
	}
}
