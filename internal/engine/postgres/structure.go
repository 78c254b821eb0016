package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// The structure comes from pg_dump, PostgreSQL's own complete serializer of
// DDL, rather than from catalogs read by hand: every object kind and every
// property of every version is its job, and it reads the structure from the
// snapshot the rows are read from (--snapshot). One custom-format dump per
// database serves twice: pg_restore --section=pre-data before the rows (in
// one transaction, so a crash leaves nothing half made), and
// --section=post-data after them (indexes, constraints, triggers, rules,
// policies, with as many parallel jobs as copy workers).

// Structure creates the target databases and the pre-data objects.
//
// A server that restarts part-way costs a pause: the step starts again
// from new snapshots (a full + incremental job's slot is made again: no
// row has moved yet), skipping the databases and roles already there;
// pre-data commits in one transaction, so nothing is left half made.
func (m *migration) Structure(ctx context.Context, progress func(done, total int)) error {
	return m.Retry().Do(ctx, "structure", toolTransient, func() error {
		err := m.structureOnce(ctx, progress)
		if err != nil && toolTransient(err) {
			m.closeSnapshots()
			m.state.SlotLSN = 0
		}
		return err
	})
}

// toolTransient reports a failure a retry may cure: a dropped or refused
// connection of opendts's own, a lost snapshot, or pg_dump/pg_restore
// losing their server.
func toolTransient(err error) bool {
	if err == nil {
		return false
	}
	if transient(err) || errors.Is(err, errSnapshotLost) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"could not connect", "server closed the connection unexpectedly", "Connection refused",
		"terminating connection due to administrator command", "the database system is starting up",
		"the database system is shutting down", "invalid snapshot identifier", "connection to server"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (m *migration) structureOnce(ctx context.Context, progress func(done, total int)) error {
	if err := m.takeSnapshots(ctx); err != nil {
		return err
	}
	if err := m.checkFence(ctx, "the structure"); err != nil {
		return err
	}
	total := len(m.dbs) + 1
	tc, err := m.e.connect(ctx, m.spec.Target, "target", "")
	if err != nil {
		return err
	}
	defer closeQuietly(tc)
	if m.spec.MigrateObject == engine.MigrateObjectWholeInstance {
		if err := m.migrateRoles(ctx, tc); err != nil {
			return err
		}
	}
	progress(1, total)
	for i, d := range m.dbs {
		var exists bool
		if err := tc.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, d.Name).Scan(&exists); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if !exists {
			if err := m.createDatabase(ctx, tc, d.Name); err != nil {
				return err
			}
		}
		if slices.Contains(m.state.PreDataDone, d.Name) {
			// An earlier attempt restored it (pre-data commits whole).
			progress(i+2, total)
			continue
		}
		if err := m.dumpSchema(ctx, d, true); err != nil {
			return err
		}
		if err := m.withTarget(ctx, d.Name, func(c *pgx.Conn) error {
			for _, t := range d.Tables {
				if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(t.Schema)); err != nil {
					return fmt.Errorf("target %s: create schema %s: %w", d.Name, t.Schema, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, f := range m.dumps[d.Name] {
			if err := m.restore(ctx, d.Name, f, "pre-data"); err != nil {
				return err
			}
		}
		m.state.PreDataDone = append(m.state.PreDataDone, d.Name)
		if err := m.cp.save(ctx, m.state); err != nil {
			return err
		}
		progress(i+2, total)
	}
	return nil
}

// createDatabase creates a target database like the source's: its
// encoding, collation, character classification and locale provider, from
// template0 (so nothing of the target's template1 comes along), owned by
// the source's owner when that role exists on the target.
func (m *migration) createDatabase(ctx context.Context, tc *pgx.Conn, name string) error {
	sc, err := m.e.connect(ctx, m.spec.Source, "source", "")
	if err != nil {
		return err
	}
	defer closeQuietly(sc)
	var version int
	if err := sc.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("source: read the server version: %w", err)
	}
	loc, err := readDBLocale(ctx, sc, version, name)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	var owner string
	if err := sc.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, name).Scan(&owner); err != nil {
		return fmt.Errorf("source: read database %s's owner: %w", name, err)
	}
	enc, collate, ctype, provider, icu := loc.encoding, loc.collate, loc.ctype, loc.provider, loc.icu
	q := fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s",
		quoteIdent(name), quoteLiteral(enc), quoteLiteral(collate), quoteLiteral(ctype))
	switch provider {
	case "i":
		q += " LOCALE_PROVIDER icu ICU_LOCALE " + quoteLiteral(icu)
	case "b":
		q += " LOCALE_PROVIDER builtin BUILTIN_LOCALE " + quoteLiteral(icu)
	}
	var ownerExists bool
	// The owner goes with the database where the target user may give it
	// to that role (a superuser, or a member of it).
	if err := tc.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND pg_has_role(current_user, oid, 'MEMBER'))`, owner).Scan(&ownerExists); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if ownerExists && owner != m.spec.Target.User {
		q += " OWNER " + quoteIdent(owner)
	}
	if _, err := tc.Exec(ctx, q); err != nil {
		return fmt.Errorf("target: create database %s (encoding %s, collation %s): %w", name, enc, collate, err)
	}
	m.e.cfg.Logger.Info("created a target database", "job_id", m.spec.JobID, "database", name, "encoding", enc, "collation", collate)
	return copyDatabaseProperties(ctx, sc, tc, name)
}

// dumpSchema runs pg_dump for database d's selection: one dump for whole
// schemas and one for listed tables (pg_dump ignores -n when -t is
// given). With useSnapshot, from this run's snapshot.
func (m *migration) dumpSchema(ctx context.Context, d *database, useSnapshot bool) error {
	pgDump, err := m.e.tool("pg_dump")
	if err != nil {
		return engine.Permanent(err)
	}
	var runs [][]string
	switch {
	case d.Whole:
		runs = append(runs, nil)
	default:
		if len(d.Schemas) > 0 {
			var args []string
			for _, s := range d.Schemas {
				args = append(args, "-n", pattern(s))
			}
			runs = append(runs, args)
		}
		if len(d.Tables) > 0 {
			var args []string
			for _, t := range d.Tables {
				args = append(args, "-t", pattern(t.Schema)+"."+pattern(t.Table))
			}
			runs = append(runs, args)
		}
	}
	m.dumps[d.Name] = nil
	for i, sel := range runs {
		file := filepath.Join(m.workDir, fmt.Sprintf("%s-%d.dump", safeFileName(d.Name), i))
		args := []string{"--format=custom", "--schema-only", "--no-password", "--file=" + file,
			"--exclude-schema=" + markSchema}
		if s := m.snaps[d.Name]; useSnapshot && s != nil {
			args = append(args, "--snapshot="+s.id)
		}
		args = append(args, sel...)
		args = append(args, "--dbname="+m.e.libpqConnString(m.spec.Source, d.Name))
		if err := m.e.run(ctx, pgDump, args, m.spec.Source.Password); err != nil {
			return fmt.Errorf("source %s: pg_dump --schema-only: %w", d.Name, err)
		}
		m.dumps[d.Name] = append(m.dumps[d.Name], file)
	}
	return nil
}

// restore replays one section of a dump into target database db.
func (m *migration) restore(ctx context.Context, db, file, section string) error {
	pgRestore, err := m.e.tool("pg_restore")
	if err != nil {
		return engine.Permanent(err)
	}
	// pg_restore commits by itself: the fence is read right before it.
	if err := m.checkFence(ctx, section+" of database "+db); err != nil {
		return err
	}
	args := []string{"--section=" + section, "--exit-on-error", "--no-password"}
	switch section {
	case "pre-data":
		args = append(args, "--single-transaction")
	case "post-data":
		// A run that stopped part-way through post-data made some of it:
		// --clean drops what it is about to create first.
		args = append(args, "--clean", "--if-exists", "--jobs="+strconv.Itoa(m.e.cfg.Workers))
	}
	list, err := m.restoreList(ctx, pgRestore, db, file, section)
	if err != nil {
		return err
	}
	if list != "" {
		args = append(args, "--use-list="+list)
	}
	mode, ok := m.roleModes[db]
	if !ok {
		// Once per database and run: every dump file and section of it
		// restores with the same owners and grants.
		var err error
		if mode[0], mode[1], err = m.roleMode(ctx, db); err != nil {
			return err
		}
		m.roleModes[db] = mode
	}
	keepOwners, keepGrants := mode[0], mode[1]
	if !keepOwners {
		args = append(args, "--no-owner")
	}
	if !keepGrants {
		args = append(args, "--no-privileges")
	}
	args = append(args, "--dbname="+m.e.libpqConnString(m.spec.Target, db), file)
	if err := m.e.run(ctx, pgRestore, args, m.spec.Target.Password); err != nil {
		return fmt.Errorf("target %s: pg_restore --section=%s: %w", db, section, err)
	}
	return nil
}

// restoreList writes a list of the dump's entries without what must not
// be restored: the CREATE SCHEMA of schemas the target database has
// already (pg_dump -n public writes CREATE SCHEMA public, which every
// database made from template0 has), and opendts's own DDL capture on the
// source (its event triggers, which no schema holds). It returns "" when
// nothing is left out.
func (m *migration) restoreList(ctx context.Context, pgRestore, db, file, section string) (string, error) {
	var existing []string
	if section == "pre-data" {
		if err := m.withTarget(ctx, db, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, `SELECT nspname FROM pg_namespace`)
			if err != nil {
				return err
			}
			existing, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		}); err != nil {
			return "", fmt.Errorf("target %s: list schemas: %w", db, err)
		}
	}
	out, err := exec.CommandContext(ctx, pgRestore, "--list", file).Output()
	if err != nil {
		return "", fmt.Errorf("pg_restore --list %s: %w", filepath.Base(file), err)
	}
	var kept []string
	dropped := false
	for _, line := range strings.Split(string(out), "\n") {
		skip := ownEntry(line)
		for _, nsp := range existing {
			if strings.Contains(line, " SCHEMA - "+nsp+" ") && !strings.HasPrefix(line, ";") {
				skip = true
			}
		}
		if skip {
			dropped = true
			continue
		}
		kept = append(kept, line)
	}
	if !dropped {
		return "", nil
	}
	list := file + "." + section + ".list"
	if err := os.WriteFile(list, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		return "", err
	}
	return list, nil
}

// ownEntry reports a dump list entry of opendts's own on the source: the
// DDL capture's event triggers and the publications of full + incremental
// jobs (named opendts_<job>), which must not reach the target.
func ownEntry(line string) bool {
	if strings.HasPrefix(line, ";") {
		return false
	}
	if strings.Contains(line, " EVENT TRIGGER - opendts_") {
		return true
	}
	if !strings.Contains(line, " PUBLICATION") {
		return false
	}
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "opendts_") {
			return true
		}
	}
	return false
}

// roleMode decides whether the source's owners and grants go with the
// objects. Owners go when the target user may give objects to them (a
// superuser, or a member of each owner role) and they all exist; grants go
// when every grantee exists. Otherwise objects are created owned by the
// target user, or without the source's grants, and the log says why.
func (m *migration) roleMode(ctx context.Context, db string) (keepOwners, keepGrants bool, err error) {
	sc, err := m.e.connect(ctx, m.spec.Source, "source", db)
	if err != nil {
		return false, false, err
	}
	defer closeQuietly(sc)
	rolesOf := func(q string) ([]string, error) {
		rows, err := sc.Query(ctx, `WITH r AS (`+q+`) SELECT DISTINCT rolname FROM r JOIN pg_roles ON pg_roles.oid = r.r ORDER BY 1`)
		if err != nil {
			return nil, fmt.Errorf("source %s: list the roles objects belong to: %w", db, err)
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	owners, err := rolesOf(`
		SELECT relowner AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ` + systemSchemaFilter + `
		UNION SELECT nspowner FROM pg_namespace n WHERE ` + systemSchemaFilter + `
		UNION SELECT proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ` + systemSchemaFilter + `
		UNION SELECT typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE ` + systemSchemaFilter)
	if err != nil {
		return false, false, err
	}
	grantees, err := rolesOf(`
		SELECT (aclexplode(relacl)).grantee AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ` + systemSchemaFilter + `
		UNION SELECT (aclexplode(nspacl)).grantee FROM pg_namespace n WHERE ` + systemSchemaFilter + `
		UNION SELECT (aclexplode(proacl)).grantee FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ` + systemSchemaFilter)
	if err != nil {
		return false, false, err
	}
	tc, err := m.e.connect(ctx, m.spec.Target, "target", "")
	if err != nil {
		return false, false, err
	}
	defer closeQuietly(tc)
	// Roles the target lacks, and owners the target user cannot give
	// objects to.
	var missingGrantees, unusableOwners []string
	q := `SELECT n, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n),
			EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n AND pg_has_role(current_user, oid, 'MEMBER'))
		FROM unnest($1::text[]) n`
	for _, set := range []struct {
		names []string
		owner bool
	}{{owners, true}, {grantees, false}} {
		rows, err := tc.Query(ctx, q, set.names)
		if err != nil {
			return false, false, fmt.Errorf("target: look for roles: %w", err)
		}
		for rows.Next() {
			var n string
			var exists, member bool
			if err := rows.Scan(&n, &exists, &member); err != nil {
				rows.Close()
				return false, false, err
			}
			switch {
			case set.owner && !member:
				unusableOwners = append(unusableOwners, n)
			case !set.owner && !exists:
				missingGrantees = append(missingGrantees, n)
			}
		}
		rows.Close()
	}
	keepOwners, keepGrants = len(unusableOwners) == 0, len(missingGrantees) == 0
	if !keepOwners {
		m.e.cfg.Logger.Warn("objects are created owned by the target user: it cannot give them to their source owners (missing on the target, or the target user is neither a superuser nor a member of them)",
			"job_id", m.spec.JobID, "database", db, "owners", unusableOwners)
	}
	if !keepGrants {
		m.e.cfg.Logger.Warn("the source's grants are left out: roles they name are missing on the target",
			"job_id", m.spec.JobID, "database", db, "roles", missingGrantees)
	}
	return keepOwners, keepGrants, nil
}

// pattern quotes a name for pg_dump's -n and -t: inside double quotes
// every character is literal.
func pattern(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// safeFileName keeps a database name usable as a file name.
func safeFileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' {
			return '_'
		}
		return r
	}, name)
}

// libpqConnString is ep's connection to database db for pg_dump and
// pg_restore, without the password (they get it from PGPASSWORD, which no
// process listing shows).
func (e *Engine) libpqConnString(ep engine.Endpoint, db string) string {
	kv := func(k, v string) string {
		return k + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	}
	return strings.Join([]string{kv("host", ep.Host), kv("port", strconv.Itoa(ep.Port)), kv("user", ep.User),
		kv("dbname", db), kv("application_name", "opendts"), kv("connect_timeout", strconv.Itoa(int(e.cfg.DialTimeout.Seconds())+1))}, " ")
}

// run runs a client program with the password in its environment; a
// failure carries the end of what it printed.
func (e *Engine) run(ctx context.Context, path string, args []string, password string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGOPTIONS=-c default_transaction_read_only=off -c synchronous_commit=on", "PGCONNECT_TIMEOUT=10")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		if password != "" {
			msg = strings.ReplaceAll(msg, password, "******")
		}
		return fmt.Errorf("%s: %w: %s", filepath.Base(path), err, msg)
	}
	return nil
}
