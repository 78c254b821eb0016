package mysql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// builtinAccounts belong to the server itself and are never moved.
var builtinAccounts = setOf("mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema", "public")

// moveAccounts re-creates the source's accounts (grants false, before the
// objects, so definers exist) or gives them their grants (grants true,
// after the objects the grants name). Whole-instance jobs only. root is
// moved only when overrideRoot; the account opendts writes the target with
// is never touched, so the migration cannot lock itself out. Statements
// about accounts carry password hashes: their errors are reported by
// number only.
func (m *schemaMover) moveAccounts(ctx context.Context, overrideRoot, grants bool) error {
	type account struct{ user, host string }
	var list []account
	rows, err := m.src.QueryContext(ctx, "SELECT User, Host, is_role FROM mysql.user")
	roles := true
	if err != nil {
		roles = false
		rows, err = m.src.QueryContext(ctx, "SELECT User, Host FROM mysql.user")
	}
	if err != nil {
		return fmt.Errorf("list the source's accounts (the source user needs SELECT on mysql.user for a whole-instance job): %w", err)
	}
	for rows.Next() {
		var a account
		var isRole string
		if roles {
			err = rows.Scan(&a.user, &a.host, &isRole)
		} else {
			err = rows.Scan(&a.user, &a.host)
		}
		if err != nil {
			rows.Close()
			return err
		}
		if a.user == "" || builtinAccounts[strings.ToLower(a.user)] || isRole == "Y" {
			continue
		}
		if a.user == "root" && !overrideRoot {
			continue
		}
		list = append(list, a)
	}
	rows.Close()
	var self string
	_ = m.ddl.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&self)
	for _, a := range list {
		name := quoteIdent(a.user) + "@" + quoteIdent(a.host)
		if a.user+"@"+a.host == self {
			m.log.Warn("not moving the account opendts writes the target with", "account", name)
			continue
		}
		if !grants {
			if err := m.createAccount(ctx, a.user, name); err != nil {
				return err
			}
			continue
		}
		lines, err := queryStrings(ctx, m.src, "SHOW GRANTS FOR "+name)
		if err != nil {
			return fmt.Errorf("read the grants of %s: %w", name, err)
		}
		for _, g := range lines {
			err := m.exec(ctx, "", nil, stripIdentified(g))
			var myErr *mysql.MySQLError
			if errors.As(err, &myErr) && (myErr.Number == 1146 || myErr.Number == 1305) {
				// A grant on a table or routine this job does not move.
				m.log.Warn("a grant was skipped: its object is not on the target", "account", name, "mysql_error", myErr.Number)
				continue
			}
			if errors.Is(err, engine.ErrFenced) {
				return err
			}
			if err != nil {
				return fmt.Errorf("grant to %s on the target failed: %s", name, errorNumber(err))
			}
		}
	}
	m.refreshAccounts(ctx)
	return nil
}

func (m *schemaMover) createAccount(ctx context.Context, user, name string) error {
	r, err := m.showCreate(ctx, "SHOW CREATE USER "+name)
	if err != nil {
		return fmt.Errorf("read account %s: %s", name, errorNumber(err))
	}
	var create string
	for k, v := range r {
		if strings.HasPrefix(k, "CREATE USER") {
			create = v
		}
	}
	if m.accounts[name] {
		if user != "root" {
			m.log.Info("account exists on the target; it gets the source's grants", "account", name)
			return nil
		}
		create = strings.Replace(create, "CREATE USER", "ALTER USER", 1)
	}
	if err := m.exec(ctx, "", nil, create); errors.Is(err, engine.ErrFenced) {
		return err
	} else if err != nil {
		return fmt.Errorf("create account %s on the target failed: %s", name, errorNumber(err))
	}
	return nil
}

// identifiedRE finds the authentication part older servers print in
// SHOW GRANTS; CREATE USER already set it, and it holds a hash.
var identifiedRE = regexp.MustCompile(`(?is)\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s+.*?)(\s+WITH\s+|$)`)

func stripIdentified(grant string) string {
	return identifiedRE.ReplaceAllString(grant, "$1")
}

// errorNumber describes an error without its text, which may quote a
// statement holding a password hash.
func errorNumber(err error) string {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return fmt.Sprintf("MySQL error %d (SQLSTATE %s)", myErr.Number, string(myErr.SQLState[:]))
	}
	return "the connection failed"
}
