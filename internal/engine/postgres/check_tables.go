package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

const primaryKeyName = "PrimaryKeyCheck"

// primaryKeyCheck warns about selected tables with neither a primary key
// nor a unique key on NOT NULL columns, found as the copy finds them
// (inventory): they are copied by ctid ranges, which a new snapshot does
// not keep, so a resumed copy recopies such a table whole, and the
// consistency check can only compare their counts and sums.
type primaryKeyCheck struct{}

func (primaryKeyCheck) Name() string { return primaryKeyName }

func (primaryKeyCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = primaryKeyName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	dbs, unread := p.readable()
	var without []string
	var example string
	tables := 0
	for _, d := range dbs {
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		inv := &database{Name: d.Name, Whole: d.Whole, Schemas: d.Schemas, Tables: d.Tables}
		if err := inventory(ctx, c, inv); err != nil {
			unread = append(unread, fmt.Sprintf("%s: %s", r.src.where(), err))
			continue
		}
		for _, rel := range inv.Relations {
			tables++
			if len(rel.Key) == 0 {
				without = append(without, shown(d.Name, rel.Ref.Schema, rel.Ref.Table))
				if example == "" {
					example = fmt.Sprintf("in database %s: ALTER TABLE %s ADD PRIMARY KEY (column, ...);", shown(d.Name), shown(rel.Ref.Schema, rel.Ref.Table))
				}
			}
		}
	}
	if len(without) > 0 {
		return warn(n, fmt.Sprintf("%d of %d selected table(s) have no primary key or unique key on NOT NULL columns: %s. They are copied by ctid ranges: a resumed copy recopies such a table whole, and the consistency check can only compare their row counts and sums",
			len(without), tables, listNames(without)),
			"Add a primary key (or a unique index on NOT NULL columns) to each before migrating where you can, for example "+example+
				" A table without one still migrates with every row, duplicates included.")
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "all %d selected table(s) have a primary key or a unique key on NOT NULL columns", tables)
}

const unloggedName = "UnloggedTableCheck"

// unloggedTableCheck names unlogged tables (migrated, but not crash-safe
// on the target either, and out of reach of logical replication) and, for
// whole databases, says that temporary tables never move.
type unloggedTableCheck struct{}

func (unloggedTableCheck) Name() string { return unloggedName }

func (unloggedTableCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = unloggedName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	dbs, unread := p.readable()
	var unlogged []string
	var example string
	whole, temp := false, 0
	for _, d := range dbs {
		if d.Whole {
			whole = true
			temp += d.temp
		}
		for _, t := range d.tables() {
			if t.unlogged {
				unlogged = append(unlogged, shown(d.Name, t.schema, t.name))
				if example == "" {
					example = fmt.Sprintf("in database %s: ALTER TABLE %s SET LOGGED;", shown(d.Name), shown(t.schema, t.name))
				}
			}
		}
	}
	tempNote := ""
	if whole {
		tempNote = fmt.Sprintf("; temporary tables are visible only to the session that made them and are never migrated (%d exist now)", temp)
	}
	if len(unlogged) > 0 {
		what := "are created unlogged on the target"
		if r.spec.MigrateType.Copies() {
			what = "are copied with their rows and created unlogged on the target"
		}
		return warn(n, fmt.Sprintf("unlogged table(s) %s: they %s, where their rows are not crash-safe either (a crash of the target empties them), and an incremental job cannot replicate them, as they write no WAL%s",
			listNames(unlogged), what, tempNote),
			"If their rows matter, make them logged on the source before migrating (or on the target afterwards): "+example)
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "no selected table is unlogged%s", tempNote)
}

const largeObjectName = "LargeObjectCheck"

// largeObjectCheck warns when a selected database holds large objects
// (pg_largeobject), which opendts does not move.
type largeObjectCheck struct{}

func (largeObjectCheck) Name() string { return largeObjectName }

func (largeObjectCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = largeObjectName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	dbs, unread := p.readable()
	var found []string
	var first string
	for _, d := range dbs {
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		var count int64
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_largeobject_metadata`).Scan(&count); err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: count large objects: %s", r.src.where(), shown(d.Name), err))
			continue
		}
		if count > 0 {
			found = append(found, fmt.Sprintf("%d in database %s", count, shown(d.Name)))
			if first == "" {
				first = d.Name
			}
		}
	}
	if len(found) > 0 {
		return warn(n, fmt.Sprintf("the source holds large objects (pg_largeobject): %s. opendts does not migrate large objects: oid columns that refer to them will point to nothing on the target", listNames(found)),
			fmt.Sprintf("Copy them after the migration with pg_dump, which does: pg_dump -Fc --data-only --blobs --exclude-table-data='*.*' -h <source> -U <user> -d %s | pg_restore -h <target> -U <user> -d %s (only the large objects move); or keep their contents in bytea columns.",
				shown(first), shown(first)))
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "no selected database holds large objects")
}

const roleConflictName = "RoleConflictCheck"

// roleConflictCheck names, for a whole-instance job, the source roles the
// job will not create: those the target has already (left as they are),
// and superusers unless IsOverrideRoot=1.
type roleConflictCheck struct{}

func (roleConflictCheck) Name() string { return roleConflictName }

func (roleConflictCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = roleConflictName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	rows, err := r.src.home.Query(ctx, `SELECT rolname, rolsuper FROM pg_roles WHERE rolname !~ '^pg_' AND oid <> 10 ORDER BY 1`)
	if err != nil {
		return warn(n, fmt.Sprintf("%s: list roles: %s", r.src.where(), err), "Check the roles by hand.")
	}
	type role struct {
		name  string
		super bool
	}
	var roles []role
	for rows.Next() {
		var x role
		if err := rows.Scan(&x.name, &x.super); err != nil {
			rows.Close()
			return warn(n, err.Error(), "Check the roles by hand.")
		}
		roles = append(roles, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return warn(n, fmt.Sprintf("%s: list roles: %s", r.src.where(), err), "Check the roles by hand.")
	}
	existing := map[string]bool{}
	trows, err := r.dst.home.Query(ctx, `SELECT rolname FROM pg_roles`)
	if err != nil {
		return warn(n, fmt.Sprintf("%s: list roles: %s", r.dst.where(), err), "Check the roles by hand.")
	}
	for trows.Next() {
		var name string
		if err := trows.Scan(&name); err != nil {
			trows.Close()
			return warn(n, err.Error(), "Check the roles by hand.")
		}
		existing[name] = true
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return warn(n, fmt.Sprintf("%s: list roles: %s", r.dst.where(), err), "Check the roles by hand.")
	}
	var there, supers []string
	for _, x := range roles {
		switch {
		case existing[x.name]:
			there = append(there, shown(x.name))
		case x.super && !r.spec.OverrideRoot:
			supers = append(supers, shown(x.name))
		}
	}
	var notes, advice []string
	if len(there) > 0 {
		notes = append(notes, fmt.Sprintf("%d source role(s) exist on the target already and are left as they are (attributes, password and memberships unchanged): %s", len(there), listNames(there)))
		advice = append(advice, fmt.Sprintf("If the source's version of a role should win, drop it on the target before starting (in each database: REASSIGN OWNED BY %s TO %s; DROP OWNED BY %s; then DROP ROLE %s;), or align it by hand afterwards.",
			there[0], shown(r.dst.ep.User), there[0], there[0]))
	}
	if len(supers) > 0 {
		notes = append(notes, fmt.Sprintf("superuser role(s) are not created without IsOverrideRoot=1: %s", listNames(supers)))
		advice = append(advice, "Set IsOverrideRoot=1 to create the source's superuser roles on the target too.")
	}
	if len(notes) > 0 {
		return warn(n, strings.Join(notes, "; "), strings.Join(advice, " "))
	}
	return pass(n, "the job creates the source's %d role(s) on the target; none exists there yet", len(roles))
}

const readOnlyName = "ReadOnlyCheck"

// readOnlyCheck checks, for DstInfo.ReadOnly=1, that the target user may
// set default_transaction_read_only on each target database (ALTER
// DATABASE ... SET needs its owner or a superuser).
type readOnlyCheck struct{}

func (readOnlyCheck) Name() string { return readOnlyName }

func (readOnlyCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = readOnlyName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	user := shown(r.dst.ep.User)
	var super bool
	if err := r.dst.home.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return warn(n, fmt.Sprintf("%s: read the user's attributes: %s", r.dst.where(), err), "Check the target user's privileges by hand.")
	}
	if super {
		return pass(n, "the target user %s is a superuser and may make the target databases read-only", user)
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	var denied, fixes, unread []string
	for _, d := range p.dbs {
		var exists, owns bool
		var owner string
		err := r.dst.home.QueryRow(ctx, `SELECT true, pg_has_role(current_user, datdba, 'USAGE'), pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, d.Name).
			Scan(&exists, &owns, &owner)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			unread = append(unread, fmt.Sprintf("%s: %s", r.dst.where(), err))
			continue
		}
		if exists {
			if !owns {
				denied = append(denied, fmt.Sprintf("database %s (owned by %s)", shown(d.Name), shown(owner)))
				fixes = append(fixes, fmt.Sprintf("ALTER DATABASE %s OWNER TO %s;", shown(d.Name), user))
			}
			continue
		}
		// The job creates it owned by the source's owner where the target
		// user is a member of that role, else by the target user.
		o, err := ownerOnTarget(ctx, r, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		if o.name != "" && !o.usage {
			denied = append(denied, fmt.Sprintf("database %s (to be created owned by %s, whose privileges the target user does not inherit)", shown(d.Name), shown(o.name)))
			fixes = append(fixes, fmt.Sprintf("ALTER ROLE %s INHERIT;", user))
		}
	}
	if len(denied) > 0 {
		return fail(n, fmt.Sprintf("DstInfo.ReadOnly=1 sets default_transaction_read_only on each target database, which needs its owner or a superuser; the target user %s owns neither: %s", user, listNames(denied)),
			"Run on the target as a superuser: "+strings.Join(fixes, " ")+" Or set DstInfo.ReadOnly to 0.")
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "the target user %s owns (or will own) every target database and may make them read-only", user)
}
