package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opendts/opendts/internal/engine"
)

// maintenanceDB is the database a connection opens when it needs none in
// particular; it exists on every cluster.
const maintenanceDB = "postgres"

// sessionSettings make both sides speak one text format, so that rows
// copied as text mean the same on the target: ISO dates, UTC, hex bytea,
// floats with every digit.
var sessionSettings = map[string]string{
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"client_encoding":    "UTF8",
	"application_name":   "opendts",
	// A target held read-only for its users (DstInfo.ReadOnly=1) stays
	// writable for opendts.
	"default_transaction_read_only": "off",
	// Commits are synchronous whatever the server's default: with
	// synchronous_commit off, a target that crashed could lose a chunk
	// (or a phase) opendts was told had committed, and nothing would
	// write it again. One flush per chunk costs little.
	"synchronous_commit": "on",
	// Literals written by the change stream carry backslashes as they
	// are.
	"standard_conforming_strings": "on",
}

// timeoutRestore bounds giving settings back after a run has ended (its
// context is gone by then).
const timeoutRestore = 30 * time.Second

// connConfig is ep's connection to database db ("" for the maintenance
// database).
func (e *Engine) connConfig(ep engine.Endpoint, db string) (*pgx.ConnConfig, error) {
	if db == "" {
		db = ep.Database
	}
	if db == "" {
		db = maintenanceDB
	}
	cfg, err := pgx.ParseConfig("sslmode=prefer")
	if err != nil {
		return nil, err
	}
	cfg.Host = ep.Host
	cfg.Port = uint16(ep.Port)
	cfg.User = ep.User
	cfg.Password = ep.Password
	cfg.Database = db
	cfg.ConnectTimeout = e.cfg.DialTimeout
	cfg.RuntimeParams = map[string]string{}
	for k, v := range sessionSettings {
		cfg.RuntimeParams[k] = v
	}
	// Each statement is sent once: no prepared-statement cache to go stale
	// when the structure changes under a long run.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return cfg, nil
}

// connect opens one connection to ep's database db. Its errors name the
// server and database, never the password.
func (e *Engine) connect(ctx context.Context, ep engine.Endpoint, side, db string) (*pgx.Conn, error) {
	return e.connectWith(ctx, ep, side, db, nil)
}

// connectWith is connect with extra session settings.
func (e *Engine) connectWith(ctx context.Context, ep engine.Endpoint, side, db string, extra map[string]string) (*pgx.Conn, error) {
	cfg, err := e.connConfig(ep, db)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", side, ep.Address(), err)
	}
	for k, v := range extra {
		cfg.RuntimeParams[k] = v
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &connectError{side: side, addr: ep.Address(), user: ep.User, db: cfg.Database, err: err}
	}
	return c, nil
}

// connectError is a failed connection, said in the DBA's terms.
type connectError struct {
	side, addr, user, db string
	err                  error
}

func (c *connectError) Error() string {
	return fmt.Sprintf("%s %s: cannot connect as %q to database %q: %s", c.side, c.addr, c.user, c.db, describeConnErr(c.err))
}

func (c *connectError) Unwrap() error { return c.err }

// describeConnErr is the reason a connection failed, without pgx's
// wrapping (which can repeat the host) and never with a password.
func describeConnErr(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return "authentication failed (" + pe.Message + "); check the user and password, and pg_hba.conf on the server"
		case "3D000":
			return pe.Message
		case "53300":
			return "the server has no free connection slots (" + pe.Message + ")"
		}
		return pe.Message + " (SQLSTATE " + pe.Code + ")"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer (timed out): check the address, the port and any firewall"
	}
	msg := err.Error()
	if strings.Contains(msg, "connection refused") {
		return "connection refused: nothing listens there, or listen_addresses does not include this address"
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

// transient reports whether err is a dropped or refused connection worth
// retrying (a restarted server), not a refusal that will stay.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, errSnapshotLost) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08 connection exceptions, 57P01-03 admin shutdown, crash
		// shutdown, cannot connect now; 53300 too many connections.
		// 55P03 lock not available (a lock_timeout), 40001/40P01 a
		// serialization failure or deadlock: worth another try.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" ||
			pe.Code == "53300" || pe.Code == "55P03" || pe.Code == "40001" || pe.Code == "40P01"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "unexpected EOF") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") || pgconn.SafeToRetry(err)
}

// quoteIdent quotes a name for SQL.
func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// quoteQualified quotes schema.name.
func quoteQualified(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// quoteLiteral makes a string literal (standard_conforming_strings on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// closeQuietly closes a connection within a short bound: a connection to a
// dead server must not hold up a stop.
func closeQuietly(c *pgx.Conn) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c.Close(ctx)
}

// sqlState is err's SQLSTATE, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// withTarget runs f on a new connection to target database db.
func (m *migration) withTarget(ctx context.Context, db string, f func(c *pgx.Conn) error) error {
	c, err := m.connectTarget(ctx, db)
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	return f(c)
}

// listSettings are the settings whose value is a list written with its
// own quoting (search_path = "$user", public): ALTER ... SET takes it as
// it is, not as one string literal.
var listSettings = map[string]bool{
	"search_path": true, "temp_tablespaces": true, "local_preload_libraries": true,
	"session_preload_libraries": true, "shared_preload_libraries": true,
}

// settingValue is a setting's value as ALTER ROLE/DATABASE ... SET takes it.
func settingValue(name, value string) string {
	if listSettings[strings.ToLower(name)] {
		return value
	}
	return quoteLiteral(value)
}
