package mysql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// HoldReadOnly makes the target read-only to ordinary users for the
// migration (DstInfo.ReadOnly=1) and returns what restores it. The value it
// had is kept in the checkpoint, so a resumed job restores the DBA's
// setting, not its own.
func (m *migration) HoldReadOnly(ctx context.Context) (func(), error) {
	if m.state.ReadOnlyBefore == nil {
		var before bool
		if err := m.dst.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&before); err != nil {
			return nil, fmt.Errorf("read the target's read_only: %w", err)
		}
		m.state.ReadOnlyBefore = &before
		if err := m.cp.save(ctx, m.state); err != nil {
			return nil, err
		}
	}
	if err := m.cp.fence.check(ctx, m.dst, "setting read_only"); err != nil {
		return nil, err
	}
	if _, err := m.dst.ExecContext(ctx, "SET GLOBAL read_only = 1"); err != nil {
		return nil, fmt.Errorf("make the target read-only (DstInfo.ReadOnly=1 needs SUPER or READ_ONLY ADMIN for the target user): %w", err)
	}
	before := *m.state.ReadOnlyBefore
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v := 0
		if before {
			v = 1
		}
		// A run that lost the job leaves read_only to the new owner.
		if err := m.cp.fence.check(ctx, m.dst, "restoring read_only"); err != nil {
			if !errors.Is(err, engine.ErrFenced) {
				m.e.cfg.Logger.Error("could not restore the target's read_only; set it by hand", "job_id", m.spec.JobID, "read_only", v, "err", err)
			}
			return
		}
		if _, err := m.dst.ExecContext(ctx, "SET GLOBAL read_only = ?", v); err != nil {
			m.e.cfg.Logger.Error("could not restore the target's read_only; set it by hand", "job_id", m.spec.JobID, "read_only", v, "err", err)
		}
	}, nil
}

// RestoreReadOnly gives the target back its read_only for a job found
// done after a restart.
func (m *migration) RestoreReadOnly(ctx context.Context) error {
	if m.state == nil || m.state.ReadOnlyBefore == nil {
		return nil
	}
	v := 0
	if *m.state.ReadOnlyBefore {
		v = 1
	}
	// A global setting, outside any transaction: the fence is read right
	// before it.
	if err := m.cp.fence.check(ctx, m.dst, "restoring read_only"); err != nil {
		return err
	}
	if _, err := m.dst.ExecContext(ctx, "SET GLOBAL read_only = ?", v); err != nil {
		return fmt.Errorf("restore the target's read_only: %w", err)
	}
	return nil
}
