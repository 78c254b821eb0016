package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// copyDatabaseProperties gives a database opendts created what pg_dump
// keeps with CREATE DATABASE rather than in the database: its comment, its
// settings (ALTER DATABASE ... SET) and its grants. Grants to roles the
// target lacks are left out.
func copyDatabaseProperties(ctx context.Context, sc, tc *pgx.Conn, name string) error {
	var comment *string
	var settings []string
	var hasACL bool
	err := sc.QueryRow(ctx, `SELECT shobj_description(d.oid, 'pg_database'),
			coalesce((SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0), '{}'),
			d.datacl IS NOT NULL
		FROM pg_database d WHERE d.datname = $1`, name).Scan(&comment, &settings, &hasACL)
	if err != nil {
		return fmt.Errorf("source: read database %s's properties: %w", name, err)
	}
	var stmts []string
	db := quoteIdent(name)
	if comment != nil {
		stmts = append(stmts, "COMMENT ON DATABASE "+db+" IS "+quoteLiteral(*comment))
	}
	for _, kv := range settings {
		if k, v, ok := strings.Cut(kv, "="); ok {
			stmts = append(stmts, "ALTER DATABASE "+db+" SET "+quoteIdent(k)+" = "+settingValue(k, v))
		}
	}
	if hasACL {
		rows, err := sc.Query(ctx, `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
				a.privilege_type, a.is_grantable
			FROM pg_database d, aclexplode(d.datacl) a
			WHERE d.datname = $1 AND a.grantee <> d.datdba`, name)
		if err != nil {
			return fmt.Errorf("source: read database %s's grants: %w", name, err)
		}
		type grant struct {
			to, priv string
			option   bool
		}
		grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (grant, error) {
			var g grant
			return g, r.Scan(&g.to, &g.priv, &g.option)
		})
		if err != nil {
			return fmt.Errorf("source: read database %s's grants: %w", name, err)
		}
		// The source's list replaces the default (CONNECT and TEMPORARY
		// to PUBLIC).
		stmts = append(stmts, "REVOKE ALL ON DATABASE "+db+" FROM PUBLIC")
		for _, g := range grants {
			to := "PUBLIC"
			if g.to != "PUBLIC" {
				var exists bool
				if err := tc.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, g.to).Scan(&exists); err != nil {
					return fmt.Errorf("target: %w", err)
				}
				if !exists {
					continue
				}
				to = quoteIdent(g.to)
			}
			q := "GRANT " + g.priv + " ON DATABASE " + db + " TO " + to
			if g.option {
				q += " WITH GRANT OPTION"
			}
			stmts = append(stmts, q)
		}
	}
	for _, q := range stmts {
		if _, err := tc.Exec(ctx, q); err != nil {
			return fmt.Errorf("target: %s: %w", q, err)
		}
	}
	return nil
}
