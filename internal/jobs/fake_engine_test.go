package jobs_test

import (
	"context"
	"errors"
	"sync"

	"github.com/opendts/opendts/internal/engine"
)

// fakeEngine stands in for a database family, and for the driver that
// runs it, in the service's tests: the test says what each check and
// migration does by setting check and migrate; the engine records what it
// was asked. Its migrations run in place of driver.Migrate (Config.Migrate,
// set by registry's caller through migrateFunc), so the tests see the
// service's side of the contract only. It is the only file that knows the
// engine contract.
type fakeEngine struct {
	mu sync.Mutex
	// check runs for Check; nil passes with one item.
	check func(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error)
	// migrate runs for Migrate; nil succeeds at once.
	migrate func(ctx context.Context, spec engine.Spec, rep engine.Reporter, complete <-chan string) error
	// specs are the specs Migrate was called with, in order.
	specs []engine.Spec
	// checks counts Check calls.
	checks int
}

var _ engine.Engine = (*fakeEngine)(nil)

// Open is never called: the service's Config.Migrate is migrateFunc.
func (f *fakeEngine) Open(context.Context, engine.Spec) (engine.Migration, error) {
	return nil, errors.New("fakeEngine.Open: the service tests replace the driver")
}

// migrateFunc runs a job's migration on the fake engine it was given, in
// place of driver.Migrate.
func migrateFunc(ctx context.Context, eng engine.Engine, spec engine.Spec, rep engine.Reporter, complete <-chan string) error {
	return eng.(*fakeEngine).Migrate(ctx, spec, rep, complete)
}

func (f *fakeEngine) setCheck(fn func(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check = fn
}

func (f *fakeEngine) setMigrate(fn func(ctx context.Context, spec engine.Spec, rep engine.Reporter, complete <-chan string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.migrate = fn
}

func (f *fakeEngine) Check(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
	f.mu.Lock()
	fn := f.check
	f.checks++
	f.mu.Unlock()
	if fn == nil {
		return []engine.CheckItem{{Name: "ConnectDBCheck", Result: engine.ResultPass, Message: "connected"}}, nil
	}
	return fn(ctx, spec, progress)
}

func (f *fakeEngine) Migrate(ctx context.Context, spec engine.Spec, rep engine.Reporter, complete <-chan string) error {
	f.mu.Lock()
	fn := f.migrate
	f.specs = append(f.specs, spec)
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, spec, rep, complete)
}

// migrations returns the specs Migrate was called with.
func (f *fakeEngine) migrations() []engine.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Spec(nil), f.specs...)
}

func (f *fakeEngine) checkCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks
}

// registry registers f as the mysql family's engine.
func (f *fakeEngine) registry() engine.Registry {
	return engine.Registry{engine.FamilyMySQL: f}
}

// twoSteps is the plan the fake migrations report.
var twoSteps = []engine.StepDef{{ID: "dumper", Name: "copy"}, {ID: "sinker", Name: "replicate"}}
