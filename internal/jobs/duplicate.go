package jobs

import (
	"context"
	"fmt"

	"github.com/opendts/opendts/internal/engine"
)

// The duplicate rule: two jobs conflict when they write overlapping objects
// into the same target instance *at the same time*. A job that is not
// running nor about to run (created, checked, check failed, finished,
// failed) blocks nothing: a DBA whose check failed creates a corrected job
// next to it, and deletes the first when it suits them. So a conflict is
// never refused at CreateMigrateJob or ModifyMigrateJob; it fails the
// check (an item named DuplicateJobCheck, with a warning when an overlapping
// job has not started yet, since only one of the two will be able to) and
// is refused at StartMigrateJob (InternalError.DuplicateJob), which is the
// moment the two would write together.

// duplicateCheckName is the check item's name.
const duplicateCheckName = "DuplicateJobCheck"

// writesTarget reports whether a job at this status writes into its target
// or is about to: scheduled, running, ready to complete, stopping,
// completing.
func (s Status) writesTarget() bool {
	switch s {
	case StatusReadyRun, StatusRunning, StatusReadyComplete, StatusStopping, StatusCompleting:
		return true
	}
	return false
}

// conflicts returns the DuplicateError of a job running into j's objects,
// and a job that overlaps j but has not started (nil when none).
func (s *Service) conflicts(ctx context.Context, j *Job) (running *DuplicateError, waiting *DuplicateError, err error) {
	objects, _, err := ParseDatabaseInfo(j.SrcDatabaseType, j.DatabaseInfo)
	if err != nil {
		return nil, nil, err
	}
	all, err := s.overlapCandidates(ctx, j, objects)
	if err != nil {
		return nil, nil, storeErr("find jobs writing into the target", err)
	}
	target := s.targetKey(j)
	for _, other := range all {
		if other.ID == j.ID || !other.Status.unfinished() || s.targetKey(other) != target {
			continue
		}
		otherObjects, _, err := ParseDatabaseInfo(other.SrcDatabaseType, other.DatabaseInfo)
		if err != nil {
			continue
		}
		what := overlap(objects, otherObjects)
		if what == "" {
			continue
		}
		dup := &DuplicateError{Other: other.ID, OtherStatus: other.Status, Target: target, Overlap: what}
		if other.Status.writesTarget() {
			return dup, nil, nil
		}
		if waiting == nil {
			waiting = dup
		}
	}
	return nil, waiting, nil
}

// duplicateCheckItem is the check's verdict on other jobs; a pass is not
// shown.
func (s *Service) duplicateCheckItem(ctx context.Context, j *Job) engine.CheckItem {
	running, waiting, err := s.conflicts(ctx, j)
	switch {
	case err != nil:
		return engine.CheckItem{Name: duplicateCheckName, Result: engine.ResultFail,
			Message: "could not compare with the other jobs: " + err.Error(),
			Advice:  "Check opendts's data directory, then check again."}
	case running != nil:
		return engine.CheckItem{Name: duplicateCheckName, Result: engine.ResultFail,
			Message: running.Error(),
			Advice:  fmt.Sprintf("Wait until job %s ends, stop it (StopMigrateJob), or select other objects (ModifyMigrateJob), then check again.", running.Other)}
	case waiting != nil:
		return engine.CheckItem{Name: duplicateCheckName, Result: engine.ResultWarning,
			Message: fmt.Sprintf("job %s (status %s) also migrates %s into the target instance %s; only one of them can run at a time",
				waiting.Other, waiting.OtherStatus, waiting.Overlap, waiting.Target),
			Advice: fmt.Sprintf("Delete job %s if this job replaces it; the first one started holds the objects until it ends.", waiting.Other)}
	}
	return engine.CheckItem{Name: duplicateCheckName, Result: engine.ResultPass,
		Message: "no other job writes these objects into the target instance"}
}

// refuseRunningDuplicate is StartMigrateJob's side of the rule.
func (s *Service) refuseRunningDuplicate(ctx context.Context, j *Job) error {
	running, _, err := s.conflicts(ctx, j)
	if err != nil {
		return err
	}
	if running != nil {
		return running
	}
	return nil
}
