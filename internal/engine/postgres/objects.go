package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// Objects replays the post-data section of each database's dump (indexes,
// constraints, triggers, rules, policies) in parallel, and refreshes the
// materialized views the source has populated. A run that resumes here has
// no dump of its own: it dumps the structure again, as it is now.
func (m *migration) Objects(ctx context.Context, active bool) error {
	if err := m.checkFence(ctx, "the objects"); err != nil {
		return err
	}
	for _, d := range m.dbs {
		if len(m.dumps[d.Name]) == 0 {
			if err := m.dumpSchema(ctx, d, false); err != nil {
				return err
			}
		}
		for _, f := range m.dumps[d.Name] {
			if err := m.restore(ctx, d.Name, f, "post-data"); err != nil {
				return err
			}
		}
		if !m.spec.MigrateType.Copies() {
			continue
		}
		if d.Relations == nil && d.MatViews == nil {
			if err := m.readInventory(ctx, d); err != nil {
				return err
			}
		}
		if err := m.refreshMatViews(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// readInventory reads d's inventory outside any snapshot, for a run that
// resumed past the copy.
func (m *migration) readInventory(ctx context.Context, d *database) error {
	c, err := m.e.connect(ctx, m.spec.Source, "source", d.Name)
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	return inventory(ctx, c, d)
}

// refreshMatViews fills the materialized views that are populated on the
// source. One may read another: those that fail because another is not
// yet populated go again after the rest, until no round makes progress.
func (m *migration) refreshMatViews(ctx context.Context, d *database) error {
	if len(d.MatViews) == 0 {
		return nil
	}
	return m.withTarget(ctx, d.Name, func(c *pgx.Conn) error {
		todo := d.MatViews
		for len(todo) > 0 {
			var again []engine.TableRef
			var lastErr error
			for _, v := range todo {
				if _, err := c.Exec(ctx, "REFRESH MATERIALIZED VIEW "+quoteQualified(v.Schema, v.Table)); err != nil {
					if sqlState(err) == "55000" { // reads a view not yet populated
						again, lastErr = append(again, v), err
						continue
					}
					return fmt.Errorf("target %s: refresh materialized view %s: %w", d.Name, v, err)
				}
			}
			if len(again) == len(todo) {
				return fmt.Errorf("target %s: refresh materialized views: %w", d.Name, lastErr)
			}
			todo = again
		}
		return nil
	})
}

// setSequences gives every migrated sequence the source's current value.
// Sequences are not transactional, so this is the value at the time of the
// call, never lower than the snapshot's.
func (m *migration) setSequences(ctx context.Context) error {
	if err := m.checkFence(ctx, "setting the sequences"); err != nil {
		return err
	}
	for _, d := range m.dbs {
		if len(d.Sequences) == 0 {
			continue
		}
		sc, err := m.e.connect(ctx, m.spec.Source, "source", d.Name)
		if err != nil {
			return err
		}
		err = m.withTarget(ctx, d.Name, func(tc *pgx.Conn) error {
			for _, s := range d.Sequences {
				var last int64
				var called bool
				name := quoteQualified(s.Schema, s.Table)
				if err := sc.QueryRow(ctx, "SELECT last_value, is_called FROM "+name).Scan(&last, &called); err != nil {
					return fmt.Errorf("source %s: read sequence %s: %w", d.Name, s, err)
				}
				if _, err := tc.Exec(ctx, "SELECT setval($1::regclass, $2, $3)", name, last, called); err != nil {
					return fmt.Errorf("target %s: set sequence %s to %d: %w", d.Name, s, last, err)
				}
			}
			return nil
		})
		closeQuietly(sc)
		if err != nil {
			return err
		}
	}
	return nil
}
