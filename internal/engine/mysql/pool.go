package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

// sessionVars are set on every connection of a migration. UTC keeps
// TIMESTAMP values as the server stores them whatever either server's or
// opendts's time zone is; the sql_mode accepts every value a source may
// hold (zero dates, zero AUTO_INCREMENT values) and nothing rewrites it.
var sessionVars = map[string]string{
	"time_zone":                "'+00:00'",
	"sql_mode":                 "'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
	"net_write_timeout":        "600",
	"net_read_timeout":         "600",
	"foreign_key_checks":       "0",
	"unique_checks":            "0",
	"innodb_lock_wait_timeout": "120",
}

// openPool opens a pool to one side with the migration's session settings
// and proves it works, retrying a refused or dropped connection with
// backoff for at most e.cfg.RetryFor.
func (e *Engine) openPool(ctx context.Context, ep engine.Endpoint, name string, conns int, extra map[string]string, multiStatements bool) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = ep.User
	cfg.Passwd = ep.Password
	cfg.Net = "tcp"
	cfg.Addr = ep.Address()
	cfg.Timeout = e.cfg.DialTimeout
	// Reads of a large chunk stream for as long as they need: the server's
	// net_write_timeout and ctx bound them, not a client read deadline.
	cfg.ReadTimeout = 0
	cfg.WriteTimeout = e.cfg.QueryTimeout
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.MaxAllowedPacket = 0 // ask the server
	// The incremental applier sends a group of changes in one round trip.
	cfg.MultiStatements = multiStatements
	// An update's row count is the rows it found, changed or not: the
	// applier checks that a change finds its one row.
	cfg.ClientFoundRows = multiStatements
	cfg.Params = make(map[string]string, len(sessionVars)+len(extra))
	for k, v := range sessionVars {
		cfg.Params[k] = v
	}
	for k, v := range extra {
		cfg.Params[k] = v
	}
	cfg.Logger = driverLogger{e.cfg.Logger.With("side", name, "addr", cfg.Addr)}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the %s %s: %w", name, ep.Address(), err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	err = e.retry(ctx, "connect to the "+name+" "+ep.Address(), func() error {
		pctx, cancel := context.WithTimeout(ctx, 2*e.cfg.DialTimeout)
		defer cancel()
		return db.PingContext(pctx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// retry runs fn under the shared retry policy (engine.RetryPolicy): until
// it succeeds, fails with an error a new connection cannot cure, or
// e.cfg.RetryFor has passed.
func (e *Engine) retry(ctx context.Context, what string, fn func() error) error {
	return engine.RetryPolicy{For: e.cfg.RetryFor, Logger: e.cfg.Logger}.Do(ctx, what, retryable, fn)
}

// retryable reports errors that a new connection may cure: the network,
// a server restarting or busy, a deadlock.
func retryable(err error) bool {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1205, // lock wait timeout
			1213, // deadlock
			2006, // server has gone away
			2013, // lost connection
			1927, // connection was killed (MariaDB)
			1317: // query interrupted (server shutdown)
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr)
}
