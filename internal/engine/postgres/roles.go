package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// sourceRole is a role of the source as the catalog describes it.
type sourceRole struct {
	Name                                 string
	Super, Inherit, CreateRole, CreateDB bool
	Login, Replication, BypassRLS        bool
	ConnLimit                            int
	ValidUntil                           *time.Time
	Password                             *string
	Config                               []string
}

// migrateRoles creates the source's roles on the target for a
// whole-instance job, with their attributes, password hashes (when the
// source user may read pg_authid), settings and memberships. Roles that
// exist on the target already are left as they are (the check names
// them); PostgreSQL's own roles (pg_*) and the bootstrap superuser are
// never created; other superusers only with IsOverrideRoot=1.
func (m *migration) migrateRoles(ctx context.Context, tc *pgx.Conn) error {
	sc, err := m.e.connect(ctx, m.spec.Source, "source", "")
	if err != nil {
		return err
	}
	defer closeQuietly(sc)
	roles, err := readRoles(ctx, sc)
	if err != nil {
		return err
	}
	rows, err := tc.Query(ctx, `SELECT rolname FROM pg_roles`)
	if err != nil {
		return fmt.Errorf("target: list roles: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target: list roles: %w", err)
	}
	onTarget := map[string]bool{}
	for _, n := range names {
		onTarget[n] = true
	}
	created := map[string]bool{}
	var skipped []string
	for _, r := range roles {
		if onTarget[r.Name] {
			skipped = append(skipped, r.Name)
			continue
		}
		if r.Super && !m.spec.OverrideRoot {
			skipped = append(skipped, r.Name+" (superuser: IsOverrideRoot=1 moves it)")
			continue
		}
		for _, q := range r.statements() {
			if _, err := tc.Exec(ctx, q); err != nil {
				return fmt.Errorf("target: create role %s: %w", r.Name, err)
			}
		}
		created[r.Name] = true
		onTarget[r.Name] = true
	}
	if len(skipped) > 0 {
		m.e.cfg.Logger.Info("roles left as they are on the target", "job_id", m.spec.JobID, "roles", skipped)
	}
	members, err := sc.Query(ctx, `SELECT r.rolname, u.rolname, a.admin_option
		FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles u ON u.oid = a.member
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("source: list role memberships: %w", err)
	}
	type grant struct {
		role, member string
		admin        bool
	}
	grants, err := pgx.CollectRows(members, func(row pgx.CollectableRow) (grant, error) {
		var g grant
		return g, row.Scan(&g.role, &g.member, &g.admin)
	})
	if err != nil {
		return fmt.Errorf("source: list role memberships: %w", err)
	}
	for _, g := range grants {
		if !(created[g.role] || created[g.member]) || !onTarget[g.role] || !onTarget[g.member] {
			continue
		}
		q := "GRANT " + quoteIdent(g.role) + " TO " + quoteIdent(g.member)
		if g.admin {
			q += " WITH ADMIN OPTION"
		}
		if _, err := tc.Exec(ctx, q); err != nil {
			return fmt.Errorf("target: grant role %s to %s: %w", g.role, g.member, err)
		}
	}
	return nil
}

// readRoles lists the source's roles but PostgreSQL's own and the
// bootstrap superuser, with password hashes where pg_authid is readable.
func readRoles(ctx context.Context, c *pgx.Conn) ([]sourceRole, error) {
	table, password := "pg_authid", "rolpassword"
	var readable bool
	if err := c.QueryRow(ctx, `SELECT has_table_privilege('pg_authid', 'SELECT')`).Scan(&readable); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !readable {
		table, password = "pg_roles", "NULL::text"
	}
	rows, err := c.Query(ctx, `SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
			r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil, `+password+`,
			coalesce((SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}')
		FROM `+table+` r WHERE r.rolname !~ '^pg_' AND r.oid <> 10 ORDER BY r.rolname`)
	if err != nil {
		return nil, fmt.Errorf("source: list roles: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (sourceRole, error) {
		var r sourceRole
		err := row.Scan(&r.Name, &r.Super, &r.Inherit, &r.CreateRole, &r.CreateDB, &r.Login, &r.Replication,
			&r.BypassRLS, &r.ConnLimit, &r.ValidUntil, &r.Password, &r.Config)
		return r, err
	})
}

// statements are the role's CREATE ROLE and ALTER ROLE ... SET.
func (r sourceRole) statements() []string {
	flag := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	opts := []string{
		flag(r.Super, "SUPERUSER", "NOSUPERUSER"), flag(r.Inherit, "INHERIT", "NOINHERIT"),
		flag(r.CreateRole, "CREATEROLE", "NOCREATEROLE"), flag(r.CreateDB, "CREATEDB", "NOCREATEDB"),
		flag(r.Login, "LOGIN", "NOLOGIN"), flag(r.Replication, "REPLICATION", "NOREPLICATION"),
		flag(r.BypassRLS, "BYPASSRLS", "NOBYPASSRLS"), fmt.Sprintf("CONNECTION LIMIT %d", r.ConnLimit),
	}
	if r.Password != nil && *r.Password != "" {
		opts = append(opts, "PASSWORD "+quoteLiteral(*r.Password))
	}
	if r.ValidUntil != nil {
		opts = append(opts, "VALID UNTIL "+quoteLiteral(r.ValidUntil.UTC().Format("2006-01-02 15:04:05.999999Z07:00")))
	}
	out := []string{"CREATE ROLE " + quoteIdent(r.Name) + " WITH " + strings.Join(opts, " ")}
	for _, kv := range r.Config {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out = append(out, "ALTER ROLE "+quoteIdent(r.Name)+" SET "+quoteIdent(k)+" = "+settingValue(k, v))
		}
	}
	return out
}
