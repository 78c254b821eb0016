package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// builtinAccounts belong to the server itself and are never moved.
var builtinAccounts = setOf("mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema", "public")

// moveAccounts re-creates the source's accounts and their grants on the
// target (whole-instance jobs). root is moved only when overrideRoot; the
// account opendts writes the target with is never touched, so the
// migration cannot lock itself out.
func (m *schemaMover) moveAccounts(ctx context.Context, overrideRoot bool) error {
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
		r, err := m.showCreate(ctx, "SHOW CREATE USER "+name)
		if err != nil {
			return fmt.Errorf("read account %s: %w", name, err)
		}
		var create string
		for k, v := range r {
			if strings.HasPrefix(k, "CREATE USER") {
				create = v
			}
		}
		if m.accounts[name] {
			if a.user != "root" {
				m.log.Info("account exists on the target; adding the source's grants", "account", name)
				create = ""
			} else {
				create = strings.Replace(create, "CREATE USER", "ALTER USER", 1)
			}
		}
		if create != "" {
			if err := m.exec(ctx, "", nil, create); err != nil {
				return fmt.Errorf("create account %s on the target: %w", name, err)
			}
		}
		grants, err := queryStrings(ctx, m.src, "SHOW GRANTS FOR "+name)
		if err != nil {
			return fmt.Errorf("read the grants of %s: %w", name, err)
		}
		for _, g := range grants {
			err := m.exec(ctx, "", nil, g)
			var myErr *mysql.MySQLError
			if errors.As(err, &myErr) && myErr.Number == 1146 {
				// A grant on a table this job does not move.
				m.log.Warn("a table grant was skipped: its table is not on the target", "account", name)
				continue
			}
			if err != nil {
				return fmt.Errorf("grant to %s on the target: %w", name, err)
			}
		}
	}
	m.refreshAccounts(ctx)
	return nil
}
