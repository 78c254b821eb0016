// Package driver runs a migration job on any database family: it owns
// what the API means, so that a family supplies only its own units
// (engine.Migration). It sequences the phases and names the steps, maps
// the units' progress onto the job's percentages, saves the phase reached
// on the family's target-side checkpoint, tells a fresh start from a
// resume, restarts the change stream with the retry policy, applies the
// ready-to-complete rule, carries out CompleteMigrateJob and decides what
// ConsistencyType checks.
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/opendts/opendts/internal/engine"
)

// The steps, following the newer DTS naming.
var (
	StepStructure = engine.StepDef{ID: "structure", Name: "migrate structure"}
	StepDumper    = engine.StepDef{ID: "dumper", Name: "take a consistent snapshot of the source"}
	StepLoader    = engine.StepDef{ID: "loader", Name: "copy rows"}
	StepObjects   = engine.StepDef{ID: "objects", Name: "build secondary indexes; create triggers, routines and events"}
	StepSinker    = engine.StepDef{ID: "sinker", Name: "apply changes from the source"}
	StepVerify    = engine.StepDef{ID: "verify", Name: "check source and target are consistent"}
)

// Progress bands: the overall percentage each part of a job moves through.
// Structure 0-5, copy 5-95 (by rows), objects 95-97, verify 97-99. A full
// + incremental job is at 97 while its change stream catches up and at 99
// (the sinker step at 100) once it is ready to complete; Complete's
// verification runs 97-99 again, and success is 100.
const (
	bandStructureEnd = 5
	bandCopyEnd      = 95
	bandObjects      = 97
	bandVerifyWidth  = 2
	bandReady        = 99
)

// Steps returns the steps a job of spec runs, in order.
func Steps(spec engine.Spec) []engine.StepDef {
	steps := []engine.StepDef{StepStructure}
	switch spec.MigrateType {
	case engine.MigrateFull:
		steps = append(steps, StepDumper, StepLoader, StepObjects)
	case engine.MigrateFullAndIncremental:
		steps = append(steps, StepDumper, StepLoader, StepObjects, StepSinker)
	}
	if verifies(spec) {
		steps = append(steps, StepVerify)
	}
	return steps
}

func verifies(spec engine.Spec) bool {
	return spec.MigrateType != engine.MigrateStructure && spec.ConsistencyType.Verifies()
}

// run is one call of Migrate.
type run struct {
	spec     engine.Spec
	m        engine.Migration
	report   engine.Reporter
	complete <-chan string
	log      *slog.Logger
}

// Migrate runs spec's migration on eng. It returns nil when the job
// succeeded: for structure and full jobs when the copy is done, for full +
// incremental jobs after a mode arrives on complete and everything up to
// that moment is applied. Cancelling ctx stops it (StopMigrateJob or a
// shutdown): it returns promptly, leaving checkpoints that a later call
// with spec.Resume set continues from. Without Resume, what an earlier run
// of the job left is discarded (the job may have been modified since).
func Migrate(ctx context.Context, eng engine.Engine, spec engine.Spec, report engine.Reporter, complete <-chan string) error {
	if spec.MigrateType < engine.MigrateStructure || spec.MigrateType > engine.MigrateFullAndIncremental {
		return fmt.Errorf("unknown MigrateType %d", spec.MigrateType)
	}
	m, err := eng.Open(ctx, spec)
	if err != nil {
		return err
	}
	defer m.Close()
	r := &run{spec: spec, m: m, report: report, complete: complete, log: m.Retry().Logger}
	if r.log == nil {
		r.log = slog.Default()
	}
	if !spec.Resume {
		if err := m.Forget(ctx); err != nil {
			return err
		}
	}
	phase, err := m.LoadPhase(ctx)
	if err != nil {
		return err
	}
	if phase == engine.PhaseDone {
		// Finished before a restart that came too soon for the job
		// service to record it; the target's read_only may still need
		// its value back.
		if spec.TargetReadOnly {
			if err := m.RestoreReadOnly(ctx); err != nil {
				return err
			}
		}
		report.Progress(100, 100)
		return nil
	}
	if phase == engine.PhaseNew {
		phase = engine.PhaseStructure
	}
	if err := m.Prepare(ctx); err != nil {
		return err
	}
	report.Plan(Steps(spec))
	if spec.TargetReadOnly {
		restore, err := m.HoldReadOnly(ctx)
		if err != nil {
			return err
		}
		defer restore()
	}
	if err := r.phases(ctx, phase); err != nil {
		return err
	}
	report.Progress(100, 100)
	if err := m.Finish(ctx); errors.Is(err, engine.ErrFenced) {
		// Another node owns the job: its run, not this one, reports it.
		return err
	} else if err != nil {
		r.log.Warn("the migration succeeded but its checkpoint could not be tidied", "job_id", spec.JobID, "err", err)
	}
	return nil
}

// phases walks the phases from the one saved.
func (r *run) phases(ctx context.Context, phase engine.Phase) error {
	spec, m := r.spec, r.m
	incremental := spec.MigrateType.Incremental()
	advance := func(next engine.Phase) error {
		phase = next
		return m.SavePhase(ctx, next)
	}
	if phase == engine.PhaseStructure {
		r.report.StepStarted(StepStructure.ID)
		err := m.Structure(ctx, func(done, total int) {
			if total > 0 {
				r.report.Progress(bandStructureEnd*done/total, 100*done/total)
			}
		})
		if err != nil {
			return err
		}
		next := engine.PhaseCopy
		if !spec.MigrateType.Copies() {
			next = engine.PhaseObjects
		}
		if err := advance(next); err != nil {
			return err
		}
	}
	if phase == engine.PhaseCopy {
		r.report.StepStarted(StepDumper.ID)
		r.report.Progress(bandStructureEnd, 0)
		if err := m.Copy(ctx, copyReport{r}); err != nil {
			return err
		}
		r.report.Progress(bandCopyEnd, 100)
		if err := advance(engine.PhaseObjects); err != nil {
			return err
		}
	}
	if phase == engine.PhaseObjects {
		if spec.MigrateType.Copies() {
			r.report.StepStarted(StepObjects.ID)
			r.report.Progress(bandObjects, 0)
		}
		// What acts on changes (triggers, events) would act on the
		// changes being applied: a full + incremental job creates it
		// at the end.
		if err := m.Objects(ctx, !incremental); err != nil {
			return err
		}
		if incremental {
			if err := advance(engine.PhaseIncremental); err != nil {
				return err
			}
		} else if err := r.done(ctx, advance); err != nil {
			return err
		}
	}
	if phase == engine.PhaseIncremental {
		if err := r.replicate(ctx); err != nil {
			return err
		}
		if err := advance(engine.PhaseFinal); err != nil {
			return err
		}
	}
	if phase == engine.PhaseFinal {
		if err := m.FinalObjects(ctx); err != nil {
			return err
		}
		if err := r.done(ctx, advance); err != nil {
			return err
		}
	}
	return nil
}

// done verifies (when the job asks for it) and then marks the job done, so
// a restart during the check runs it again rather than skip it.
func (r *run) done(ctx context.Context, advance func(engine.Phase) error) error {
	if verifies(r.spec) {
		if err := r.verify(ctx); err != nil {
			return err
		}
	}
	return advance(engine.PhaseDone)
}

// copyReport maps the copy's progress onto its band.
type copyReport struct{ r *run }

func (c copyReport) Snapshotted() { c.r.report.StepStarted(StepLoader.ID) }

func (c copyReport) Copied(pct int) {
	pct = max(0, min(pct, 100))
	c.r.report.Progress(bandStructureEnd+pct*(bandCopyEnd-bandStructureEnd)/100, pct)
}

// Table passes a table's progress on as it is: the job service keeps the
// rates.
func (c copyReport) Table(p engine.TableProgress) { c.r.report.TableProgress(p) }
