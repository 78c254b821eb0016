package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

const dstPrivilegeName = "DstPrivilegeCheck"

// dstPrivilegeCheck checks that the target user can create what the job
// creates: the databases (CREATEDB, and membership in the owner role it
// gives them), objects in existing databases and schemas (CREATE), the
// job's state in schema _opendts of the maintenance database, roles for a
// whole instance (CREATEROLE). Objects only a superuser may create (C and
// untrusted-language functions, event triggers, untrusted extensions)
// make a warning when the target user is not one.
type dstPrivilegeCheck struct{}

func (dstPrivilegeCheck) Name() string { return dstPrivilegeName }

type roleAttrs struct {
	super, createDB, createRole bool
}

func (dstPrivilegeCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = dstPrivilegeName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	t := r.dst.home
	user := shown(r.dst.ep.User)
	var a roleAttrs
	if err := t.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user`).
		Scan(&a.super, &a.createDB, &a.createRole); err != nil {
		return warn(n, fmt.Sprintf("%s: read the user's attributes: %s", r.dst.where(), err), "Check the target user's privileges by hand.")
	}
	onTarget, err := targetDatabases(ctx, r.dst)
	if err != nil {
		return warn(n, err.Error(), "Check that the target user may read pg_database.")
	}
	var g grants
	var unread []string

	// The job's state lives in the maintenance database.
	maint := r.dst.maintenanceDB()
	if r.dst.homeDB != maint {
		g.add(fmt.Sprintf("CONNECT on the maintenance database %s, where opendts keeps the job's state in schema %s", shown(maint), markSchema),
			"", fmt.Sprintf("GRANT CONNECT, CREATE ON DATABASE %s TO %s;", shown(maint), user))
	} else if !a.super {
		var create bool
		var schemaExists, schemaOK bool
		if err := t.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE'),
				EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
				coalesce((SELECT has_schema_privilege(oid, 'CREATE') AND has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = $1), false)`,
			markSchema).Scan(&create, &schemaExists, &schemaOK); err != nil {
			unread = append(unread, fmt.Sprintf("%s: %s", r.dst.where(), err))
		} else if schemaExists && !schemaOK {
			g.add(fmt.Sprintf("CREATE and USAGE on schema %s of database %s, where opendts keeps the job's state", markSchema, shown(maint)),
				maint, fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA %s TO %s;", markSchema, user))
		} else if !schemaExists && !create {
			g.add(fmt.Sprintf("CREATE on the maintenance database %s, where opendts keeps the job's state in schema %s", shown(maint), markSchema),
				"", fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s;", shown(maint), user))
		}
	}

	if r.spec.MigrateObject != engine.MigrateObjectSelected && !a.super && !a.createRole {
		g.add("CREATEROLE, to create the source's roles (a whole-instance job moves them)", "", fmt.Sprintf("ALTER ROLE %s CREATEROLE;", user))
	}

	dbs, more := p.readable()
	unread = append(unread, more...)
	for _, d := range dbs {
		if _, exists := onTarget[d.Name]; !exists {
			if !a.super && !a.createDB {
				g.add("CREATEDB, to create database "+shown(d.Name), "", fmt.Sprintf("ALTER ROLE %s CREATEDB;", user))
			}
			continue
		}
		if a.super {
			continue
		}
		var connect, create bool
		if err := t.QueryRow(ctx, `SELECT has_database_privilege($1, 'CONNECT'), has_database_privilege($1, 'CREATE')`, d.Name).Scan(&connect, &create); err != nil {
			unread = append(unread, fmt.Sprintf("%s: %s", r.dst.where(), err))
			continue
		}
		if !connect || !create {
			var missing []string
			if !connect {
				missing = append(missing, "CONNECT")
			}
			if !create {
				missing = append(missing, "CREATE")
			}
			lack := strings.Join(missing, ", ")
			g.add(lack+" on the existing database "+shown(d.Name), "", fmt.Sprintf("GRANT %s ON DATABASE %s TO %s;", lack, shown(d.Name), user))
			continue
		}
		if d.Whole {
			continue
		}
		tc, err := r.dst.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		rows, err := tc.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname = ANY($1) AND NOT has_schema_privilege(oid, 'CREATE') ORDER BY 1`, d.schemaNames())
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.dst.where(), shown(d.Name), err))
			continue
		}
		denied, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.dst.where(), shown(d.Name), err))
			continue
		}
		for _, s := range denied {
			g.add("CREATE on the existing schema "+shown(d.Name, s), d.Name, fmt.Sprintf("GRANT CREATE ON SCHEMA %s TO %s;", shown(s), user))
		}
	}
	if len(g.lacks) > 0 {
		return fail(n, fmt.Sprintf("the target user %s lacks: %s", user, listNames(g.lacks)), g.advice("target"))
	}
	if !a.super {
		superOnly, err := superuserObjects(ctx, r, dbs)
		if err != nil {
			unread = append(unread, err.Error())
		}
		if len(superOnly) > 0 {
			return warn(n, fmt.Sprintf("the source has objects only a superuser can create, and the target user %s is not one: %s", user, listNames(superOnly)),
				"Migrate with a superuser as the target user (on a managed service, the provider's administrator role), or drop these objects from the selection and create them by hand.")
		}
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	if a.super {
		return pass(n, "the target user %s is a superuser", user)
	}
	return pass(n, "the target user %s may create the job's databases, schemas and objects, and its state in %s.%s", user, shown(maint), markSchema)
}

// futureOwner is the role that will own a database the job creates: the
// source database's owner where it exists on the target and the target
// user is a member of it (createDatabase gives OWNER then), else the
// target user ("").
type futureOwner struct {
	name string
	// usage: the target user has the role's privileges, which ALTER
	// DATABASE needs (a member with NOINHERIT has not).
	usage bool
}

func ownerOnTarget(ctx context.Context, r *checkRun, db string) (futureOwner, error) {
	var o futureOwner
	var owner string
	if err := r.src.home.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, db).Scan(&owner); err != nil {
		return o, fmt.Errorf("%s: read the owner of database %s: %w", r.src.where(), shown(db), err)
	}
	if owner == r.dst.ep.User {
		return o, nil
	}
	var member bool
	err := r.dst.home.QueryRow(ctx, `SELECT coalesce(bool_or(pg_has_role(current_user, oid, 'MEMBER')), false),
			coalesce(bool_or(pg_has_role(current_user, oid, 'USAGE')), false)
		FROM pg_roles WHERE rolname = $1`, owner).Scan(&member, &o.usage)
	if err != nil {
		return o, fmt.Errorf("%s: look for role %s: %w", r.dst.where(), shown(owner), err)
	}
	if member {
		o.name = owner
	}
	return o, nil
}

// superuserObjects lists the selected source objects that only a
// superuser can create: functions in C or an untrusted language, and, in
// whole databases, event triggers, untrusted procedural languages and
// extensions the target marks superuser-only.
func superuserObjects(ctx context.Context, r *checkRun, dbs []*checkDB) ([]string, error) {
	var out []string
	var exts []string
	for _, d := range dbs {
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			return out, err
		}
		rows, err := c.Query(ctx, `
			SELECT n.nspname, format('function %I.%I(%s) in language %s', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), l.lanname)
			FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
			WHERE NOT l.lanpltrusted AND `+systemSchemaFilter+` AND `+notExtension("pg_proc", "p.oid")+`
			UNION ALL
			SELECT NULL, format('event trigger %I', evtname) FROM pg_event_trigger WHERE `+notExtension("pg_event_trigger", "oid")+`
			UNION ALL
			SELECT NULL, format('language %I', lanname) FROM pg_language WHERE lanispl AND NOT lanpltrusted AND `+notExtension("pg_language", "oid")+`
			UNION ALL
			SELECT NULL, 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
			ORDER BY 2`)
		if err != nil {
			return out, fmt.Errorf("%s, database %s: list functions and event triggers: %w", r.src.where(), shown(d.Name), err)
		}
		for rows.Next() {
			var schema *string
			var label string
			if err := rows.Scan(&schema, &label); err != nil {
				rows.Close()
				return out, err
			}
			switch {
			case schema != nil:
				if d.Whole || slices.Contains(d.Schemas, *schema) {
					out = append(out, label+" in database "+shown(d.Name))
				}
			case strings.HasPrefix(label, "extension "):
				if d.Whole {
					exts = append(exts, strings.TrimPrefix(label, "extension "))
				}
			case d.Whole:
				out = append(out, label+" in database "+shown(d.Name))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
	}
	if len(exts) == 0 {
		return out, nil
	}
	rows, err := r.dst.home.Query(ctx, `SELECT DISTINCT v.name FROM pg_available_extension_versions v
		JOIN pg_available_extensions a ON a.name = v.name AND a.default_version = v.version
		WHERE v.superuser AND NOT v.trusted AND v.name = ANY($1) ORDER BY 1`, exts)
	if err != nil {
		return out, fmt.Errorf("%s: list extensions: %w", r.dst.where(), err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return out, fmt.Errorf("%s: list extensions: %w", r.dst.where(), err)
	}
	for _, e := range names {
		out = append(out, "extension "+e+" (not trusted: CREATE EXTENSION needs a superuser)")
	}
	return out, nil
}
