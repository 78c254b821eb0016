package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opendts/opendts/internal/engine"
)

// checkSide is one server of a check: the connection ConnectDBCheck
// opened (home) and one more per database an item needs, opened on first
// use and kept until the check ends.
type checkSide struct {
	e     *Engine
	name  string // "source" or "target"
	field string // the API field to correct: SrcInfo or DstInfo
	ep    engine.Endpoint

	// home is the session ConnectDBCheck opened, in homeDB; nil when the
	// side could not be reached.
	home   *pgx.Conn
	homeDB string
	// conns are sessions in other databases, the most recently used last,
	// at most maxCheckConns of them: an instance with hundreds of
	// databases must not see hundreds of sessions from a check.
	conns []dbConn
	errs  map[string]error

	version lazy[int] // server_version_num
}

// where names the server for messages: "source 10.0.0.5:5432", with the
// catalogue instance when the job used one.
func (s *checkSide) where() string {
	if s.ep.InstanceID != "" {
		return fmt.Sprintf("%s %s (%s)", s.name, s.ep.InstanceID, s.ep.Address())
	}
	return fmt.Sprintf("%s %s", s.name, s.ep.Address())
}

// maintenanceDB is the database the engine opens when it needs none in
// particular (Endpoint.Database, else postgres): the target keeps the
// job's state there.
func (s *checkSide) maintenanceDB() string {
	if s.ep.Database != "" {
		return s.ep.Database
	}
	return maintenanceDB
}

func (s *checkSide) close() {
	closeQuietly(s.home)
	for _, dc := range s.conns {
		closeQuietly(dc.c)
	}
}

// open connects to database db with a read-only session: the check must
// never write, and the server enforces it.
func (s *checkSide) open(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := s.e.connConfig(s.ep, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.where(), err)
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.RuntimeParams["statement_timeout"] = "120000"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &connectError{side: s.name, addr: s.ep.Address(), user: s.ep.User, db: cfg.Database, err: err}
	}
	return c, nil
}

// maxCheckConns bounds the sessions a check keeps open per side, besides
// the home one.
const maxCheckConns = 4

type dbConn struct {
	db string
	c  *pgx.Conn
}

// conn is a session in database db, kept for the next item that needs it
// while few databases are in use; a database it could not enter is not
// tried again in the same check.
func (s *checkSide) conn(ctx context.Context, db string) (*pgx.Conn, error) {
	if s.home != nil && db == s.homeDB {
		return s.home, nil
	}
	for i, dc := range s.conns {
		if dc.db == db {
			s.conns = append(append(s.conns[:i:i], s.conns[i+1:]...), dc)
			return dc.c, nil
		}
	}
	if err, ok := s.errs[db]; ok {
		return nil, err
	}
	c, err := s.open(ctx, db)
	if err != nil {
		if s.errs == nil {
			s.errs = map[string]error{}
		}
		s.errs[db] = err
		return nil, err
	}
	if len(s.conns) >= maxCheckConns {
		closeQuietly(s.conns[0].c)
		s.conns = s.conns[1:]
	}
	s.conns = append(s.conns, dbConn{db, c})
	return c, nil
}

// serverVersion is server_version_num (150004 for 15.4).
func (s *checkSide) serverVersion(ctx context.Context) (int, error) {
	return s.version.get(func() (int, error) {
		var v int
		if err := s.home.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
			return 0, fmt.Errorf("read the %s's version: %w", s.where(), err)
		}
		return v, nil
	})
}

// unreachable is the verdict of an item that needs a side it could not
// connect to: not run, since nothing was verified. ConnectDBCheck carries
// the cause, so this says only which side was missing.
func unreachable(name string, sides ...*checkSide) (engine.CheckItem, bool) {
	for _, s := range sides {
		if s.home == nil {
			return engine.CheckItem{Name: name, Result: engine.ResultNotRun,
				Message: fmt.Sprintf("not run: the %s could not be reached (see ConnectDBCheck)", s.where())}, true
		}
	}
	return engine.CheckItem{}, false
}

const connectName = "ConnectDBCheck"

// connectCheck opens one side's home session: the maintenance database,
// or, when the user may not enter that one, the first selected database.
type connectCheck struct{ s *checkSide }

func (connectCheck) Name() string { return connectName }

func (c connectCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	s := c.s
	if s.ep.Host == "" || s.ep.Port <= 0 {
		return fail(connectName, fmt.Sprintf("the %s has no host or port", s.name),
			fmt.Sprintf("Set %s (or the instance it names) to a reachable host and port.", s.field))
	}
	first := s.maintenanceDB()
	conn, err := s.open(ctx, first)
	if err == nil {
		s.home, s.homeDB = conn, first
		return pass(connectName, "connected to the %s as user %q, database %q", s.where(), s.ep.User, first)
	}
	if alt := r.firstSelectedDB(); noAccessToDB(err) && alt != "" && alt != first {
		if conn, err2 := s.open(ctx, alt); err2 == nil {
			s.home, s.homeDB = conn, alt
			return pass(connectName, "connected to the %s as user %q, database %q (the maintenance database %q refused the user: %s)",
				s.where(), s.ep.User, alt, first, describeConnErr(err))
		}
	}
	return fail(connectName, err.Error(), connectAdvice(s, err))
}

// firstSelectedDB is the first database DatabaseInfo names, or "".
func (r *checkRun) firstSelectedDB() string {
	if r.spec.MigrateObject != engine.MigrateObjectSelected {
		return ""
	}
	for _, o := range r.spec.Objects {
		if o.Database != "" {
			return o.Database
		}
	}
	return ""
}

// noAccessToDB reports whether a connection was refused for its database
// alone: it does not exist, the user lacks CONNECT on it, or pg_hba.conf
// has no line for it.
func noAccessToDB(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "3D000", "42501":
		return true
	case "28000":
		return strings.Contains(pe.Message, "pg_hba.conf")
	}
	return false
}

// connectAdvice says what to correct for a failed connection.
func connectAdvice(s *checkSide, err error) string {
	var pe *pgconn.PgError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &pe):
		switch pe.Code {
		case "28P01":
			return fmt.Sprintf("Correct %s.User and %s.Password.", s.field, s.field)
		case "28000":
			if strings.Contains(pe.Message, "pg_hba.conf") {
				return fmt.Sprintf("Add a line for opendts's host, user %q and the database to pg_hba.conf on the %s (for example: host all %s <opendts-host>/32 scram-sha-256), then SELECT pg_reload_conf().",
					s.ep.User, s.name, s.ep.User)
			}
			return fmt.Sprintf("Correct %s.User: the role must exist and have LOGIN (ALTER ROLE %s LOGIN).", s.field, shown(s.ep.User))
		case "3D000":
			return fmt.Sprintf("Create the database, or set %s.Database to one the user may connect to.", s.field)
		case "42501":
			return fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s;", shown(s.maintenanceDB()), shown(s.ep.User))
		case "53300":
			return "Close idle sessions or raise max_connections (or the role's CONNECTION LIMIT), then check again."
		case "57P03":
			return "The server is starting up or shutting down: wait until it accepts connections, then check again."
		}
		return fmt.Sprintf("Check %s and the %s's server log.", s.field, s.name)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("Correct %s.Host, or make the name resolvable from opendts's host.", s.field)
	case errors.Is(err, syscall.ECONNREFUSED), strings.Contains(err.Error(), "connection refused"):
		return fmt.Sprintf("Check %s.Host and %s.Port, that PostgreSQL is running, and that listen_addresses includes the address opendts connects to.", s.field, s.field)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("Check %s.Host and %s.Port, and that firewalls or security groups let opendts reach the server.", s.field, s.field)
	}
	return fmt.Sprintf("Check %s, and that the server is PostgreSQL.", s.field)
}
