package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

// The items of a full + incremental job (MigrateType 3): what logical
// replication through the job's own slot and publication needs on the
// source, and what applying its changes needs on the target.

const (
	logicalReplicationName = "LogicalReplicationCheck"
	replicaIdentityName    = "ReplicaIdentityCheck"
	publicationName        = "PublicationCheck"
	longTransactionName    = "LongTransactionCheck"
	applierRoleName        = "TargetApplyRoleCheck"
)

// logicalReplicationCheck: wal_level, a free slot and WAL sender, the
// REPLICATION attribute, and one database per job.
type logicalReplicationCheck struct{}

func (logicalReplicationCheck) Name() string { return logicalReplicationName }

func (logicalReplicationCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = logicalReplicationName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	c := r.src.home
	var level, user string
	var slots, slotsUsed, senders, sendersUsed int
	var replication bool
	err := c.QueryRow(ctx, `SELECT current_setting('wal_level'), current_user,
			current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots),
			current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_replication),
			(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)`).
		Scan(&level, &user, &slots, &slotsUsed, &senders, &sendersUsed, &replication)
	if err != nil {
		return fail(n, fmt.Sprintf("%s: cannot read the replication settings: %v", r.src.where(), err), "Check that the source user may read pg_settings and pg_replication_slots.")
	}
	var problems, advice []string
	if v, err := r.src.serverVersion(ctx); err == nil && v < 150000 {
		// pg_current_xact_id, xid8 and FOR TABLES IN SCHEMA, which the
		// stream and the DDL capture use, came in 13 and 15; only 15 is
		// tested.
		problems = append(problems, fmt.Sprintf("the source runs PostgreSQL %d.%d: opendts replicates changes from PostgreSQL 15 or later", v/10000, v%10000))
		advice = append(advice, "Run a full migration (MigrateType 2) from this source, or upgrade it to 15 or later first.")
	}
	if level != "logical" {
		problems = append(problems, fmt.Sprintf("wal_level is %s, not logical", level))
		advice = append(advice, "ALTER SYSTEM SET wal_level = logical; then restart the source server.")
	}
	if slotsUsed >= slots {
		problems = append(problems, fmt.Sprintf("max_replication_slots is %d and all are used", slots))
		advice = append(advice, fmt.Sprintf("ALTER SYSTEM SET max_replication_slots = %d; then restart the source, or drop an unused slot (SELECT pg_drop_replication_slot(name)).", slots+4))
	}
	if sendersUsed >= senders {
		problems = append(problems, fmt.Sprintf("max_wal_senders is %d and all are in use", senders))
		advice = append(advice, fmt.Sprintf("ALTER SYSTEM SET max_wal_senders = %d; then restart the source.", senders+4))
	}
	if !replication {
		problems = append(problems, fmt.Sprintf("the source user %s lacks the REPLICATION attribute", user))
		advice = append(advice, fmt.Sprintf("ALTER ROLE %s REPLICATION; and allow it in pg_hba.conf for the database (replication connections to a database match its database lines).", shown(user)))
	}
	if r.spec.MigrateObject != engine.MigrateObjectSelected || countDatabases(r.spec) != 1 {
		problems = append(problems, "the job selects more or fewer than one database: a full + incremental job replicates one database through one slot")
		advice = append(advice, "Create one job per database, each with DatabaseInfo naming that database.")
	}
	if len(problems) > 0 {
		return fail(n, strings.Join(problems, "; "), strings.Join(advice, " "))
	}
	return pass(n, "wal_level is logical, %d of %d replication slots and %d of %d WAL senders are free, and %s may replicate",
		slots-slotsUsed, slots, senders-sendersUsed, senders, user)
}

func countDatabases(spec engine.Spec) int {
	seen := map[string]bool{}
	for _, o := range spec.Objects {
		seen[o.Database] = true
	}
	return len(seen)
}

// replicaIdentityCheck: every selected table can have its UPDATEs and
// DELETEs decoded: a primary key (REPLICA IDENTITY DEFAULT), a chosen
// unique index, or REPLICA IDENTITY FULL. Without one, the source itself
// refuses UPDATE and DELETE on a published table.
type replicaIdentityCheck struct{}

func (replicaIdentityCheck) Name() string { return replicaIdentityName }

func (replicaIdentityCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = replicaIdentityName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	dbs, unread := p.readable()
	var without, statements []string
	tables := 0
	for _, d := range dbs {
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		rows, err := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind = 'r' AND `+systemSchemaFilter+` AND (c.relreplident = 'n'
				OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
				OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
			ORDER BY 1, 2`)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s: %v", r.src.where(), err))
			continue
		}
		for rows.Next() {
			var schema, name string
			if err := rows.Scan(&schema, &name); err != nil {
				break
			}
			if !d.selected(schema, name) {
				continue
			}
			without = append(without, shown(d.Name, schema, name))
			statements = append(statements, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", shown(schema, name)))
		}
		rows.Close()
		for _, rel := range d.tables() {
			if rel.kind == "r" {
				tables++
			}
		}
	}
	if len(without) > 0 {
		if len(statements) > 5 {
			statements = append(statements[:5], "...")
		}
		return fail(n, fmt.Sprintf("%d selected table(s) have no replica identity (no primary key, no REPLICA IDENTITY USING INDEX, not FULL): %s; the source refuses their UPDATEs and DELETEs once they are published, and they could not be replicated",
			len(without), listNames(without)),
			"Add a primary key to each, or set REPLICA IDENTITY FULL (every UPDATE and DELETE then writes the whole old row to the WAL, and opendts removes exactly one of identical rows): "+strings.Join(statements, " "))
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "every one of the %d selected table(s) has a replica identity", tables)
}

// publicationCheck: the job creates its publication FOR ALL TABLES (a
// superuser, whole database) or FOR TABLE (the owner of every table).
type publicationCheck struct{}

func (publicationCheck) Name() string { return publicationName }

func (publicationCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = publicationName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	var super bool
	var user string
	if err := r.src.home.QueryRow(ctx, `SELECT rolsuper, rolname FROM pg_roles WHERE rolname = current_user`).Scan(&super, &user); err != nil {
		return fail(n, fmt.Sprintf("%s: %v", r.src.where(), err), "Check the source user.")
	}
	if super {
		return pass(n, "the source user %s is a superuser: it may create the job's publication, and the source's DDL is captured (an event trigger and schema %s in the database, removed when the job ends) and replayed on the target", user, markSchema)
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	dbs, unread := p.readable()
	var notOwned []string
	for _, d := range dbs {
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		rows, err := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind = 'r' AND `+systemSchemaFilter+` AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1, 2`)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s: %v", r.src.where(), err))
			continue
		}
		for rows.Next() {
			var schema, name string
			if rows.Scan(&schema, &name) == nil && d.selected(schema, name) {
				notOwned = append(notOwned, shown(d.Name, schema, name))
			}
		}
		rows.Close()
	}
	if len(notOwned) > 0 {
		return fail(n, fmt.Sprintf("the source user %s does not own %d selected table(s): %s; opendts creates a publication FOR TABLE of the selected tables, which only their owner (or a superuser) may",
			user, len(notOwned), listNames(notOwned)),
			fmt.Sprintf("Run the job as the tables' owner (with REPLICATION), or as a superuser, or GRANT the owning role to %s.", shown(user)))
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return warn(n, fmt.Sprintf("the source user %s owns every selected table: it may create the job's publication; but it is not a superuser, so the source's DDL cannot be captured: a change to a selected table's columns will stop the job, and tables created later are not replicated", user),
		"Run the job as a superuser to have DDL replayed on the target, or make no DDL on the selected tables until Complete.")
}

// longTransactionCheck: creating a slot waits for every transaction in
// progress to end.
type longTransactionCheck struct{}

func (longTransactionCheck) Name() string { return longTransactionName }

func (longTransactionCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = longTransactionName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	rows, err := r.src.home.Query(ctx, `SELECT pid, coalesce(datname, ''), coalesce(usename, ''), extract(epoch FROM now() - xact_start)::bigint
		FROM pg_stat_activity WHERE xact_start IS NOT NULL AND now() - xact_start > interval '5 minutes'
			AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY xact_start LIMIT 10`)
	if err != nil {
		return warn(n, fmt.Sprintf("%s: cannot list transactions: %v", r.src.where(), err), "Check for long transactions yourself before starting: SELECT pid, now() - xact_start FROM pg_stat_activity ORDER BY 2 DESC;")
	}
	var long []string
	for rows.Next() {
		var pid int
		var db, user string
		var age int64
		if rows.Scan(&pid, &db, &user, &age) == nil {
			long = append(long, fmt.Sprintf("pid %d (%s, user %s) open for %d s", pid, db, user, age))
		}
	}
	rows.Close()
	if len(long) > 0 {
		return warn(n, "transactions have been open on the source for more than 5 minutes: "+strings.Join(long, "; ")+"; creating the job's replication slot waits until they end",
			"Let them finish, or end them (SELECT pg_terminate_backend(pid);), before starting the job.")
	}
	return pass(n, "no transaction has been open on the source for more than 5 minutes")
}

// applierRoleCheck: changes are applied with session_replication_role =
// replica, so that triggers and foreign keys on the target do not act on
// them a second time (cascades were applied on the source already); only
// a superuser may set it, as PostgreSQL's own subscriptions require.
type applierRoleCheck struct{}

func (applierRoleCheck) Name() string { return applierRoleName }

func (applierRoleCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = applierRoleName
	if res, bad := unreachable(n, r.dst); bad {
		return res
	}
	var super bool
	var user string
	if err := r.dst.home.QueryRow(ctx, `SELECT rolsuper, rolname FROM pg_roles WHERE rolname = current_user`).Scan(&super, &user); err != nil {
		return fail(n, fmt.Sprintf("%s: %v", r.dst.where(), err), "Check the target user.")
	}
	if !super {
		return fail(n, fmt.Sprintf("the target user %s is not a superuser: opendts applies changes with session_replication_role = replica (so that the target's triggers and foreign keys do not act on them a second time), which only a superuser may set", user),
			fmt.Sprintf("Use a superuser as DstInfo.User for a full + incremental job (ALTER ROLE %s SUPERUSER;), as PostgreSQL's own logical replication does.", shown(user)))
	}
	return pass(n, "the target user %s is a superuser: changes are applied with session_replication_role = replica", user)
}
