// Package enginetest has a scripted database family for tests of the
// layers above the engines (the job service, the API): it moves no data
// and is driven by the test. Its check passes unless the source user is
// "denied"; its copy reports 6 % and then waits for Finish (full jobs) or
// ends at once (full + incremental jobs, whose stream reports a lag of
// 1 s and 3 MiB and runs until Complete, a cancel or Finish). Its copy
// reports two tables: shop.users done (10 of 10 rows) and shop.orders half
// copied (500 of 1,000) while it waits, and shop.orders done when it ends
// without an error.
package enginetest

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// Script is the scripted engine.
type Script struct {
	mu      sync.Mutex
	release map[string]chan error
}

var _ engine.Engine = (*Script)(nil)

// New returns a scripted engine.
func New() *Script { return &Script{release: map[string]chan error{}} }

// Check passes, with a warning, unless the source user is "denied".
func (s *Script) Check(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
	progress(1, 2)
	if spec.Source.User == "denied" {
		return []engine.CheckItem{{Name: "SrcPrivilegeCheck", Result: engine.ResultFail, Message: "user denied lacks SELECT", Advice: "GRANT SELECT"}}, nil
	}
	progress(2, 2)
	return []engine.CheckItem{
		{Name: "ConnectDBCheck", Result: engine.ResultPass, Message: "connected"},
		{Name: "PrimaryKeyCheck", Result: engine.ResultWarning, Message: "shop.log has no primary key", Advice: "add one"},
	}, nil
}

func (s *Script) releaseCh(id string) chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.release[id]
	if !ok {
		ch = make(chan error, 1)
		s.release[id] = ch
	}
	return ch
}

// Finish ends the copy of a full job, or the stream of a full +
// incremental one, with err.
func (s *Script) Finish(id string, err error) { s.releaseCh(id) <- err }

// Open starts a scripted run.
func (s *Script) Open(ctx context.Context, spec engine.Spec) (engine.Migration, error) {
	return &migration{s: s, spec: spec}, nil
}

type migration struct {
	s     *Script
	spec  engine.Spec
	phase engine.Phase
}

func (m *migration) LoadPhase(context.Context) (engine.Phase, error)     { return m.phase, nil }
func (m *migration) SavePhase(_ context.Context, p engine.Phase) error   { m.phase = p; return nil }
func (m *migration) Forget(context.Context) error                        { m.phase = engine.PhaseNew; return nil }
func (m *migration) Finish(context.Context) error                        { return nil }
func (m *migration) Prepare(context.Context) error                       { return nil }
func (m *migration) HoldReadOnly(context.Context) (func(), error)        { return func() {}, nil }
func (m *migration) RestoreReadOnly(context.Context) error               { return nil }
func (m *migration) Objects(context.Context, bool) error                 { return nil }
func (m *migration) FinalObjects(context.Context) error                  { return nil }
func (m *migration) Retry() engine.RetryPolicy                           { return engine.RetryPolicy{For: time.Second} }
func (m *migration) Close()                                              {}
func (m *migration) VerifyTables() []engine.TableRef                     { return nil }
func (m *migration) Structure(_ context.Context, p func(int, int)) error { p(1, 1); return nil }

func (m *migration) VerifyCount(context.Context, engine.TableRef) (engine.TableVerification, error) {
	return engine.TableVerification{}, nil
}

func (m *migration) VerifyContent(context.Context, engine.TableRef, int) (engine.TableVerification, error) {
	return engine.TableVerification{}, nil
}

func (m *migration) Copy(ctx context.Context, r engine.CopyReport) error {
	r.Snapshotted()
	orders := engine.TableRef{Database: "shop", Table: "orders"}
	users := engine.TableRef{Database: "shop", Table: "users"}
	r.Table(engine.TableProgress{Table: orders, RowsTotal: 1000})
	r.Table(engine.TableProgress{Table: users, RowsTotal: 10})
	r.Table(engine.TableProgress{Table: users, RowsDone: 10, RowsTotal: 10, Done: true})
	r.Table(engine.TableProgress{Table: orders, RowsDone: 500, RowsTotal: 1000})
	r.Copied(6)
	if !m.spec.MigrateType.Incremental() {
		select {
		case err := <-m.s.releaseCh(m.spec.JobID):
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.Table(engine.TableProgress{Table: orders, RowsDone: 1000, RowsTotal: 1000, Done: true})
	return nil
}

func (m *migration) OpenStream(context.Context) (engine.ChangeStream, error) {
	return &stream{m: m}, nil
}

// pos is a position of the scripted stream.
type pos int

func (p pos) Before(o engine.Position) bool { q, ok := o.(pos); return ok && p < q }
func (p pos) String() string                { return strconv.Itoa(int(p)) }

type stream struct{ m *migration }

func (s *stream) Run(ctx context.Context, ctl *engine.StreamControl) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	release := s.m.s.releaseCh(s.m.spec.JobID)
	for !ctl.ShouldStop(pos(1)) {
		select {
		case err := <-release:
			if err == nil {
				return nil
			}
			return engine.Permanent(err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (s *stream) Applied() engine.Position                                { return pos(1) }
func (s *stream) SourcePosition(context.Context) (engine.Position, error) { return pos(1), nil }
func (s *stream) Reconnect(context.Context) error                         { return nil }
func (s *stream) Close()                                                  {}

func (s *stream) Lag(context.Context) (engine.Lag, error) {
	return engine.Lag{Seconds: 1, Bytes: 3 << 20, Known: true}, nil
}
