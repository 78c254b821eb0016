package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// need is one privilege the account must hold on one object. Any of names
// satisfies it: servers rename privileges (MariaDB 10.5 shows REPLICATION
// CLIENT as BINLOG MONITOR) and some jobs accept either of two (RELOAD for
// FLUSH TABLES WITH READ LOCK, or LOCK TABLES). names[0] is the one the
// advice grants, so it must be grantable at the need's level.
type need struct {
	names     []string
	db, table string // db "" is *.*; table "" is db.*
	// shown is how messages name the need when names alone would confuse
	// ("REPLICATION CLIENT (BINLOG MONITOR)"); names[0] otherwise.
	shown string
}

func (n need) object() string {
	switch {
	case n.db == "":
		return "*.*"
	case n.table == "":
		return quoteIdent(n.db) + ".*"
	}
	return quoteIdent(n.db) + "." + quoteIdent(n.table)
}

func (n need) label() string {
	if n.shown != "" {
		return n.shown
	}
	return n.names[0]
}

func (g *grantSet) satisfies(n need) bool {
	for _, name := range n.names {
		if g.has(name, n.db, n.table) {
			return true
		}
	}
	return false
}

// scope is where a side's privileges are needed: the whole instance, or the
// databases and tables the job selected.
type scope struct {
	instance bool
	dbs      []string   // selected whole
	tables   []tableKey // selected one by one
	tableDBs []string   // databases of the tables, once each
}

func scopeOf(spec engine.Spec) scope {
	if spec.MigrateObject != engine.MigrateObjectSelected {
		return scope{instance: true}
	}
	var sc scope
	seen := make(map[string]bool)
	for _, o := range spec.Objects {
		if o.Database == "" {
			continue // SourceObjectsCheck reports it
		}
		if len(o.Tables) == 0 {
			sc.dbs = append(sc.dbs, o.Database)
			continue
		}
		for _, t := range o.Tables {
			sc.tables = append(sc.tables, tableKey{o.Database, t})
		}
		if !seen[o.Database] {
			seen[o.Database] = true
			sc.tableDBs = append(sc.tableDBs, o.Database)
		}
	}
	return sc
}

// each adds, for every privilege in privs, a need on every object of the
// scope; whole databases take db-level needs, listed tables table-level
// ones (or db-level where dbOnly: LOCK TABLES, EVENT, CREATE ROUTINE exist
// only there).
func (sc scope) each(dbOnly bool, names ...[]string) []need {
	var out []need
	for _, n := range names {
		if sc.instance {
			out = append(out, need{names: n})
			continue
		}
		for _, db := range sc.dbs {
			out = append(out, need{names: n, db: db})
		}
		if dbOnly {
			for _, db := range sc.tableDBs {
				out = append(out, need{names: n, db: db})
			}
			continue
		}
		for _, t := range sc.tables {
			out = append(out, need{names: n, db: t.db, table: t.table})
		}
	}
	return out
}

func one(names ...string) []string { return names }

// sourceNeeds lists what reading the source takes for spec:
//   - structure (every type): SELECT, SHOW VIEW (view definitions), TRIGGER
//     (trigger definitions), EVENT for whole databases;
//   - a consistent full copy (types 2 and 3): RELOAD for FLUSH TABLES WITH
//     READ LOCK, or else LOCK TABLES;
//   - the incremental phase (type 3): REPLICATION SLAVE to read the binlog,
//     REPLICATION CLIENT (BINLOG MONITOR on MariaDB 10.5+) for its position.
func sourceNeeds(spec engine.Spec) []need {
	sc := scopeOf(spec)
	needs := sc.each(false, one("SELECT"), one("SHOW VIEW"), one("TRIGGER"))
	if sc.instance || len(sc.dbs) > 0 {
		whole := scope{instance: sc.instance, dbs: sc.dbs}
		needs = append(needs, whole.each(true, one("EVENT"))...)
	}
	if spec.MigrateType == engine.MigrateFull || spec.MigrateType == engine.MigrateFullAndIncremental {
		if sc.instance {
			needs = append(needs, need{names: one("RELOAD", "LOCK TABLES"), shown: "RELOAD (or LOCK TABLES)"})
		} else {
			for _, n := range sc.each(true, one("LOCK TABLES", "RELOAD")) {
				n.shown = "LOCK TABLES (or RELOAD on *.*)"
				needs = append(needs, n)
			}
		}
	}
	if spec.MigrateType == engine.MigrateFullAndIncremental {
		needs = append(needs,
			need{names: one("REPLICATION SLAVE", "REPLICATION REPLICA")},
			need{names: one("REPLICATION CLIENT", "BINLOG MONITOR"), shown: "REPLICATION CLIENT (BINLOG MONITOR)"})
	}
	return needs
}

// targetNeeds lists what writing the target takes: creating and loading
// tables, views and triggers on every selected object, routines and events
// with whole databases, and for a whole instance the accounts too, which
// takes CREATE USER and GRANT OPTION; and opendts's checkpoint database.
// (CREATE on a database that a table-level selection needs created is not
// checked.)
func targetNeeds(spec engine.Spec) []need {
	sc := scopeOf(spec)
	needs := sc.each(false,
		one("SELECT"), one("INSERT"), one("UPDATE"), one("DELETE"),
		one("CREATE"), one("ALTER"), one("DROP"), one("INDEX"),
		one("CREATE VIEW"), one("TRIGGER"))
	if sc.instance || len(sc.dbs) > 0 {
		whole := scope{instance: sc.instance, dbs: sc.dbs}
		needs = append(needs, whole.each(true, one("CREATE ROUTINE"), one("EVENT"))...)
	}
	if sc.instance {
		needs = append(needs, need{names: one("CREATE USER")}, need{names: one("GRANT OPTION")})
	} else {
		// opendts keeps its checkpoints in their own database on the
		// target (see checkpoint.go); *.* grants cover it already.
		for _, p := range []string{"CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"} {
			needs = append(needs, need{names: one(p), db: checkpointDB})
		}
	}
	return needs
}

const (
	srcPrivilegeName = "SrcPrivilegeCheck"
	dstPrivilegeName = "DstPrivilegeCheck"
	readOnlyName     = "ReadOnlyPrivilegeCheck"
)

type srcPrivilegeCheck struct{}

func (srcPrivilegeCheck) Name() string { return srcPrivilegeName }

func (srcPrivilegeCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	return checkNeeds(ctx, srcPrivilegeName, r.src, sourceNeeds(r.spec))
}

type dstPrivilegeCheck struct{}

func (dstPrivilegeCheck) Name() string { return dstPrivilegeName }

func (dstPrivilegeCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	return checkNeeds(ctx, dstPrivilegeName, r.dst, targetNeeds(r.spec))
}

func checkNeeds(ctx context.Context, name string, s *side, needs []need) engine.CheckItem {
	if res, bad := unreachable(name, s); bad {
		return res
	}
	g, err := s.grantSet(ctx)
	if err != nil {
		return warn(name, fmt.Sprintf("could not read the grants of user '%s' on the %s: %s", s.ep.User, s.where(), err),
			"Check the privileges by hand with SHOW GRANTS.")
	}
	return judgeNeeds(name, s, g, needs)
}

// judgeNeeds names every missing privilege by object, and gives the GRANT
// statements that fix them.
func judgeNeeds(name string, s *side, g *grantSet, needs []need) engine.CheckItem {
	var order []string
	missing := make(map[string][]need)
	for _, n := range needs {
		if g.satisfies(n) {
			continue
		}
		obj := n.object()
		if _, ok := missing[obj]; !ok {
			order = append(order, obj)
		}
		missing[obj] = append(missing[obj], n)
	}
	if len(order) == 0 {
		return pass(name, "user %s on the %s has the privileges the job needs", g.account, s.where())
	}

	var lacks, grants []string
	for _, obj := range order {
		var labels, grantNames []string
		for _, n := range missing[obj] {
			labels = append(labels, n.label())
			grantNames = append(grantNames, n.names[0])
		}
		lacks = append(lacks, strings.Join(labels, ", ")+" on "+obj)
		grants = append(grants, fmt.Sprintf("GRANT %s ON %s TO %s;", strings.Join(grantNames, ", "), obj, g.account))
	}
	msg := fmt.Sprintf("user %s on the %s lacks %s", g.account, s.where(), joinLimited(lacks, "; ", 10))
	if g.roles {
		msg += " (privileges granted through roles are not counted on MySQL)"
	}
	return fail(name, msg, "Grant them, for example: "+joinLimited(grants, " ", 10))
}

type readOnlyCheck struct{}

func (readOnlyCheck) Name() string { return readOnlyName }

// Check proves the target account may switch read_only (it sets read_only
// to the value it already has: the privilege is checked, nothing changes)
// and may still write once it is on.
func (readOnlyCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	const n = readOnlyName
	s := r.dst
	if res, bad := unreachable(n, s); bad {
		return res
	}
	v, err := s.serverVersion(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check the target by hand.")
	}
	setPriv, bypass := readOnlyPrivileges(v)
	advice := fmt.Sprintf("Grant %s ON *.* to user '%s' on the target, or set DstInfo.ReadOnly to 0.", setPriv, s.ep.User)

	_, err = s.db.ExecContext(ctx, "SET GLOBAL read_only = @@global.read_only")
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && myErr.Number == erSpecificAccess {
		return fail(n, fmt.Sprintf("user '%s' may not set read_only on the %s (needs %s)", s.ep.User, s.where(), setPriv), advice)
	}
	if err != nil {
		return warn(n, fmt.Sprintf("could not test read_only on the %s: %s", s.where(), err), advice)
	}

	g, err := s.grantSet(ctx)
	if err != nil {
		return warn(n, fmt.Sprintf("could not read the grants of user '%s' on the %s: %s", s.ep.User, s.where(), err), advice)
	}
	for _, p := range bypass {
		if g.has(p, "", "") {
			return pass(n, "user %s may set read_only on the %s and write while it is on", g.account, s.where())
		}
	}
	return fail(n, fmt.Sprintf("user %s may set read_only on the %s but not write while it is on (needs %s)",
		g.account, s.where(), strings.Join(bypass, " or ")), advice)
}

// readOnlyPrivileges returns the privilege that lets an account set
// read_only on v, and those that let it write while read_only is on.
// MariaDB split READ_ONLY ADMIN out of SUPER in 10.5.2 and stopped SUPER
// implying it in 10.11; MySQL 8 lets CONNECTION_ADMIN write.
func readOnlyPrivileges(v serverVersion) (set string, bypass []string) {
	switch {
	case v.mariadb && v.atLeast(10, 11):
		return "READ_ONLY ADMIN", []string{"READ_ONLY ADMIN"}
	case v.mariadb && v.atLeast(10, 5):
		return "READ_ONLY ADMIN", []string{"READ_ONLY ADMIN", "SUPER"}
	case !v.mariadb && v.atLeast(8, 0):
		return "SYSTEM_VARIABLES_ADMIN", []string{"SUPER", "CONNECTION_ADMIN"}
	}
	return "SUPER", []string{"SUPER"}
}

// joinLimited joins at most limit items and says how many it left out, so
// that a job selecting thousands of tables still gets a readable message.
func joinLimited(items []string, sep string, limit int) string {
	if len(items) <= limit {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:limit], sep) + fmt.Sprintf("%s... and %d more", sep, len(items)-limit)
}
