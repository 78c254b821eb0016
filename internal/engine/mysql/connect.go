package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// role tells the two sides apart in messages: which server, and which API
// field (SrcInfo or DstInfo) the DBA must correct.
type role struct {
	name  string
	field string
}

var (
	sourceRole = role{name: "source", field: "SrcInfo"}
	targetRole = role{name: "target", field: "DstInfo"}
)

// side is one server of the run: its connection pool once connectCheck has
// opened it, and the facts several items read from it, fetched once.
type side struct {
	role
	ep  engine.Endpoint
	cfg Config

	// db and connErr are set by connectCheck before any other item runs;
	// the items read them only after that phase has ended.
	db      *sql.DB
	connErr error

	version lazy[serverVersion]
	vars    lazy[map[string]string]
	grants  lazy[*grantSet]
}

func newSide(r role, ep engine.Endpoint, cfg Config) *side {
	return &side{role: r, ep: ep, cfg: cfg}
}

// where names the server for messages: "source 10.0.0.5:3306", with the
// catalogue instance when the job used one.
func (s *side) where() string {
	if s.ep.InstanceID != "" {
		return fmt.Sprintf("%s %s (%s)", s.name, s.ep.InstanceID, s.ep.Address())
	}
	return fmt.Sprintf("%s %s", s.name, s.ep.Address())
}

func (s *side) close() {
	if s.db != nil {
		s.db.Close()
	}
}

// unreachable is the verdict of an item that needs a side it could not
// connect to: not run, since nothing was verified. ConnectDBCheck carries
// the cause, so this says only which side was missing.
func unreachable(name string, sides ...*side) (engine.CheckItem, bool) {
	for _, s := range sides {
		if s.db == nil {
			return engine.CheckItem{Name: name, Result: engine.ResultNotRun,
				Message: fmt.Sprintf("not run: the %s could not be reached (see ConnectDBCheck)", s.where())}, true
		}
	}
	return engine.CheckItem{}, false
}

const connectName = "ConnectDBCheck"

// connectCheck opens one side and proves the credentials work. It is the
// only item that sets the side's pool, and runs before all others.
type connectCheck struct{ s *side }

func (connectCheck) Name() string { return connectName }

func (c connectCheck) Check(ctx context.Context, _ *run) engine.CheckItem {
	s := c.s
	if s.ep.Host == "" || s.ep.Port <= 0 {
		s.connErr = errors.New("no address")
		return fail(connectName,
			fmt.Sprintf("%s has no host or port", s.name),
			fmt.Sprintf("Set %s (or the instance it names) to a reachable host and port.", s.field))
	}
	db, err := s.open(ctx)
	if err != nil {
		s.connErr = err
		msg, advice := describeConnErr(s, err)
		return fail(connectName, msg, advice)
	}
	s.db = db
	return pass(connectName, "connected to the %s as user '%s'", s.where(), s.ep.User)
}

// open returns a pool on which one connection has been made, so that a bad
// address or password shows here and not in a later item.
func (s *side) open(ctx context.Context) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = s.ep.User
	cfg.Passwd = s.ep.Password
	cfg.Net = "tcp"
	cfg.Addr = s.ep.Address()
	cfg.Timeout = s.cfg.DialTimeout
	cfg.ReadTimeout = s.cfg.QueryTimeout
	cfg.WriteTimeout = s.cfg.QueryTimeout
	cfg.Loc = time.UTC
	// Placeholders are filled in client-side: one round trip per query
	// instead of prepare, execute and close.
	cfg.InterpolateParams = true
	cfg.Logger = driverLogger{s.cfg.Logger.With("side", s.name, "addr", cfg.Addr)}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.where(), err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(s.cfg.Parallel)
	db.SetMaxIdleConns(s.cfg.Parallel)

	// A server that accepts TCP but never greets would otherwise hold the
	// handshake until QueryTimeout: twice the dial timeout is plenty for a
	// healthy server to dial, greet and authenticate.
	pctx, cancel := context.WithTimeout(ctx, 2*s.cfg.DialTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", s.where(), err)
	}
	return db, nil
}

// MySQL error numbers the connect check explains.
const (
	erAccessDenied      = 1045
	erHostNotPrivileged = 1130
	erHostIsBlocked     = 1129
	erConCount          = 1040
	erNotSupportedAuth  = 1251
	erSpecificAccess    = 1227
	erUnknownColumn     = 1054
)

// describeConnErr turns a failed connection into words a DBA can act on.
// The driver's errors never carry the password, and neither do these.
func describeConnErr(s *side, err error) (message, advice string) {
	var myErr *mysql.MySQLError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &myErr):
		switch myErr.Number {
		case erAccessDenied:
			return fmt.Sprintf("access denied for user '%s' on the %s (MySQL error 1045): check %s.User and %s.Password",
					s.ep.User, s.where(), s.field, s.field),
				fmt.Sprintf("Correct %s.User and %s.Password, and make sure the account exists for the host opendts connects from.", s.field, s.field)
		case erHostNotPrivileged:
			return fmt.Sprintf("the %s does not let opendts's host connect (MySQL error 1130): %s", s.where(), myErr.Message),
				fmt.Sprintf("Create the account for opendts's host (for example CREATE USER '%s'@'%%' ...) or connect from a host the account allows.", s.ep.User)
		case erHostIsBlocked:
			return fmt.Sprintf("the %s blocks opendts's host after too many connection errors (MySQL error 1129)", s.where()),
				"Run FLUSH HOSTS on the server (or raise max_connect_errors), then check again."
		case erConCount:
			return fmt.Sprintf("the %s has too many connections (MySQL error 1040)", s.where()),
				"Close idle sessions or raise max_connections, then check again."
		case erNotSupportedAuth:
			return fmt.Sprintf("the %s asks for an authentication method opendts does not support (MySQL error 1251)", s.where()),
				fmt.Sprintf("Use mysql_native_password, caching_sha2_password or ed25519 for user '%s'.", s.ep.User)
		}
		return fmt.Sprintf("the %s refused the connection: MySQL error %d: %s", s.where(), myErr.Number, myErr.Message),
			fmt.Sprintf("Check %s and the server's error log.", s.field)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve the %s host %q: %s", s.name, s.ep.Host, dnsErr.Err),
			fmt.Sprintf("Correct %s.Host, or make the name resolvable from the opendts host.", s.field)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens on the %s (connection refused)", s.where()),
			fmt.Sprintf("Check %s.Host and %s.Port, and that the database server is running.", s.field, s.field)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("no route to the %s", s.where()),
			fmt.Sprintf("Check %s.Host and the network between opendts and the server.", s.field)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("the %s did not answer (waited %s)", s.where(), 2*s.cfg.DialTimeout),
			fmt.Sprintf("Check %s.Host and %s.Port, and that firewalls or security groups let opendts reach the server.", s.field, s.field)
	}
	if inner := errors.Unwrap(err); inner != nil {
		err = inner // open's wrapping repeats where()
	}
	return fmt.Sprintf("cannot connect to the %s: %s", s.where(), err.Error()),
		fmt.Sprintf("Check %s and that the server is a MySQL-family database.", s.field)
}

// driverLogger sends the driver's own complaints (dropped idle connections
// and the like) to slog instead of the process's stderr.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Debug("mysql driver: " + fmt.Sprint(v...)) }

// checkedVars are the global variables the items read. SHOW VARIABLES
// leaves out those a server does not have (binlog_row_image before MySQL
// 5.6, binlog_expire_logs_seconds before 8.0 / MariaDB 10.6) instead of
// failing, so one query serves every version.
var checkedVars = []string{
	"log_bin", "binlog_format", "binlog_row_image", "server_id",
	"expire_logs_days", "binlog_expire_logs_seconds", "lower_case_table_names",
	"binlog_transaction_compression", "binlog_row_value_options",
}

// globalVars reads checkedVars once per side; names are lower case.
func (s *side) globalVars(ctx context.Context) (map[string]string, error) {
	return s.vars.get(func() (map[string]string, error) {
		q := "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('" + strings.Join(checkedVars, "','") + "')"
		rows, err := s.db.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read the %s's variables: %w", s.name, err)
		}
		defer rows.Close()
		vars := make(map[string]string)
		for rows.Next() {
			var name, value string
			if err := rows.Scan(&name, &value); err != nil {
				return nil, fmt.Errorf("read the %s's variables: %w", s.name, err)
			}
			vars[strings.ToLower(name)] = value
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the %s's variables: %w", s.name, err)
		}
		return vars, nil
	})
}
