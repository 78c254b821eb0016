package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// grants collects what a user lacks and the statements that give it,
// grouped by the database they are run in.
type grants struct {
	lacks []string
	stmts map[string][]string // database ("" for any) -> statements
	order []string
}

func (g *grants) add(lack, db, stmt string) {
	g.lacks = append(g.lacks, lack)
	if g.stmts == nil {
		g.stmts = map[string][]string{}
	}
	if _, ok := g.stmts[db]; !ok {
		g.order = append(g.order, db)
	}
	if !slices.Contains(g.stmts[db], stmt) {
		g.stmts[db] = append(g.stmts[db], stmt)
	}
}

// advice is the statements to run, at most 8 of them.
func (g *grants) advice(side string) string {
	var parts []string
	n := 0
	for _, db := range g.order {
		var s []string
		for _, stmt := range g.stmts[db] {
			if n++; n > 8 {
				break
			}
			s = append(s, stmt)
		}
		if len(s) == 0 {
			break
		}
		if db == "" {
			parts = append(parts, strings.Join(s, " "))
		} else {
			parts = append(parts, fmt.Sprintf("in database %s: %s", shown(db), strings.Join(s, " ")))
		}
	}
	more := ""
	if n > 8 {
		more = " (and the same for the others listed)"
	}
	return fmt.Sprintf("Run on the %s as a superuser or the objects' owner: %s%s", side, strings.Join(parts, " "), more)
}

const srcPrivilegeName = "SrcPrivilegeCheck"

// srcPrivilegeCheck checks that the source user can read everything the
// job reads: CONNECT on the databases, USAGE on the schemas, SELECT on the
// tables and sequences (pg_dump locks each table it dumps, which takes
// SELECT, and the copy reads them), no row-level security hiding rows;
// for a whole instance, pg_authid for the roles' passwords.
type srcPrivilegeCheck struct{}

func (srcPrivilegeCheck) Name() string { return srcPrivilegeName }

func (srcPrivilegeCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = srcPrivilegeName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read pg_database and the catalogs.")
	}
	user := shown(r.src.ep.User)
	var super, bypassRLS, replication, authid bool
	if err := r.src.home.QueryRow(ctx, `SELECT rolsuper, rolbypassrls, rolreplication, has_table_privilege('pg_authid', 'SELECT')
		FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypassRLS, &replication, &authid); err != nil {
		return warn(n, fmt.Sprintf("%s: read the user's attributes: %s", r.src.where(), err), "Check the source user's privileges by hand.")
	}
	var g grants
	var unread []string
	tables := 0
	readLacks := false // lacks that pg_read_all_data would cover
	for _, d := range p.dbs {
		if d.err != nil {
			if sqlState(d.err) == "42501" {
				g.add("CONNECT on database "+shown(d.Name), "", fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s;", shown(d.Name), user))
			} else {
				unread = append(unread, d.err.Error())
			}
			continue
		}
		for _, s := range d.schemas {
			if !s.usage {
				readLacks = true
				g.add("USAGE on schema "+shown(d.Name, s.name), d.Name, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s;", shown(s.name), user))
			}
		}
		for _, rel := range d.rels {
			switch {
			case rel.isTable():
				tables++
				if !rel.canSelect {
					readLacks = true
					g.add("SELECT on table "+shown(d.Name, rel.schema, rel.name), d.Name, fmt.Sprintf("GRANT SELECT ON %s TO %s;", shown(rel.schema, rel.name), user))
				}
			case rel.kind == "S" && !rel.canSelect:
				readLacks = true
				g.add("SELECT on sequence "+shown(d.Name, rel.schema, rel.name), d.Name, fmt.Sprintf("GRANT SELECT ON SEQUENCE %s TO %s;", shown(rel.schema, rel.name), user))
			}
		}
		if !super && !bypassRLS {
			hidden, err := rlsTables(ctx, r.src, d)
			if err != nil {
				unread = append(unread, err.Error())
			}
			for _, t := range hidden {
				g.add("rows of "+shown(d.Name, t[0], t[1])+" (row-level security is on and the user neither owns it nor has BYPASSRLS)", "",
					fmt.Sprintf("ALTER ROLE %s BYPASSRLS;", user))
			}
		}
	}
	if len(g.lacks) > 0 {
		adv := g.advice("source")
		if v, err := r.src.serverVersion(ctx); err == nil && majorOf(v) >= 14 && readLacks {
			adv += fmt.Sprintf(" Or, to read everything at once: GRANT pg_read_all_data TO %s;", user)
		}
		return fail(n, fmt.Sprintf("the source user %s lacks: %s", user, listNames(g.lacks)), adv)
	}
	var notes []string
	var advice []string
	if len(unread) > 0 {
		notes = append(notes, "could not look at every database: "+strings.Join(unread, "; "))
		advice = append(advice, "Check that the source user may connect to every selected database.")
	}
	if r.spec.MigrateObject != engine.MigrateObjectSelected && !authid {
		notes = append(notes, fmt.Sprintf("the source user %s may not read pg_authid: roles are created on the target without their passwords", user))
		advice = append(advice, "Migrate with a superuser as the source user to keep the roles' passwords, or set them on the target afterwards (ALTER ROLE name PASSWORD '...').")
	}
	if r.spec.MigrateType.Incremental() && !super && !replication {
		notes = append(notes, fmt.Sprintf("the source user %s lacks the REPLICATION attribute, which incremental jobs will need", user))
		advice = append(advice, fmt.Sprintf("ALTER ROLE %s REPLICATION;", user))
	}
	if len(notes) > 0 {
		return warn(n, strings.Join(notes, "; "), strings.Join(advice, " "))
	}
	return pass(n, "the source user %s may read the %d selected table(s), their schemas and sequences", user, tables)
}

// rlsTables are the selected tables whose rows row-level security would
// hide from the source user (it is on, and the user does not own them).
func rlsTables(ctx context.Context, s *checkSide, d *checkDB) ([][2]string, error) {
	c, err := s.conn(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relrowsecurity AND NOT pg_has_role(c.relowner, 'USAGE') AND c.relkind IN ('r', 'p') AND `+systemSchemaFilter+`
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("%s, database %s: list tables with row-level security: %w", s.where(), shown(d.Name), err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
		var t [2]string
		return t, row.Scan(&t[0], &t[1])
	})
	if err != nil {
		return nil, fmt.Errorf("%s, database %s: list tables with row-level security: %w", s.where(), shown(d.Name), err)
	}
	var out [][2]string
	for _, t := range all {
		if d.selected(t[0], t[1]) {
			out = append(out, t)
		}
	}
	return out, nil
}
