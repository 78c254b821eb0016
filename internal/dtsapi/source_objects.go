package dtsapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/catalog"
	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/jobs"
)

// SourceObjectsAction is the opendts extension action that lists what a
// source holds, for picking a job's DatabaseInfo: the databases (and, for
// PostgreSQL, schemas) with their tables. The source is given as
// CreateMigrateJob takes it, or as the JobId of a job whose stored source
// (with its stored password) is read.
const SourceObjectsAction = "DescribeMigrateSourceObjects"

// Bounds of what DescribeMigrateSourceObjects reads.
const (
	maxObjectGroups   = 200  // databases (MySQL) or database.schema pairs (PostgreSQL)
	maxObjectTables   = 2000 // tables per group; Truncated says when more exist
	maxObjectPGDBs    = 50   // PostgreSQL databases visited
	sourceObjectsWait = 20 * time.Second
)

// systemDatabases are never migrated, so never listed.
var systemDatabases = map[string]bool{
	"information_schema": true, "mysql": true, "performance_schema": true, "sys": true, "__opendts": true,
}

type sourceObjectsRequest struct {
	JobId           *string
	SrcDatabaseType *string
	SrcAccessType   *string
	SrcInfo         *srcInfoIn
}

type objectGroup struct {
	Database  string
	Schema    string `json:",omitempty"`
	Tables    []string
	Truncated bool
}

// RegisterSourceObjects adds SourceObjectsAction to srv; cat resolves
// InstanceIds of access type cdb, svc the sources of jobs.
func RegisterSourceObjects(srv *cloudapi.Server, cat jobs.Catalog, svc *jobs.Service) {
	srv.Handle(SourceObjectsAction, 5, wrap(func(ctx context.Context, req *cloudapi.Request) (any, error) {
		var in sourceObjectsRequest
		if err := req.Params.Decode(&in); err != nil {
			return nil, err
		}
		var ep engine.Endpoint
		var err error
		if in.JobId != nil && *in.JobId != "" {
			if in.SrcDatabaseType != nil || in.SrcAccessType != nil || in.SrcInfo != nil {
				return nil, cloudapi.Errorf(cloudapi.CodeInvalidParameter, "Give either JobId (the job's stored source) or SrcDatabaseType, SrcAccessType and SrcInfo, not both.")
			}
			req.Annotate("job_id", *in.JobId)
			ep, err = svc.SourceEndpoint(ctx, *in.JobId)
			if errors.Is(err, catalog.ErrUnknown) {
				return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "The job's SrcInfo.InstanceId is not in the instance catalogue.")
			}
			if err != nil {
				return nil, err
			}
		} else {
			if in.SrcDatabaseType == nil || *in.SrcDatabaseType == "" {
				return nil, missing("SrcDatabaseType")
			}
			if in.SrcAccessType == nil || *in.SrcAccessType == "" {
				return nil, missing("SrcAccessType")
			}
			if in.SrcInfo == nil {
				return nil, missing("SrcInfo")
			}
			ep, err = sourceEndpoint(*in.SrcDatabaseType, *in.SrcAccessType, in.SrcInfo, cat)
			if err != nil {
				return nil, err
			}
		}
		ctx, cancel := context.WithTimeout(ctx, sourceObjectsWait)
		defer cancel()
		var groups []objectGroup
		switch engine.FamilyOf(ep.DatabaseType) {
		case engine.FamilyMySQL:
			groups, err = mysqlObjects(ctx, ep)
		case engine.FamilyPostgreSQL:
			groups, err = postgresObjects(ctx, ep)
		default:
			return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "SrcDatabaseType %q cannot be listed: opendts lists the objects of mysql, mariadb, percona and postgresql sources.", ep.DatabaseType)
		}
		if err != nil {
			return nil, cloudapi.Errorf("FailedOperation", "Could not list the objects of the source %s: %s", ep.Address(), sourceErrText(err))
		}
		if groups == nil {
			groups = []objectGroup{}
		}
		return struct {
			TotalCount int64
			Objects    []objectGroup
		}{int64(len(groups)), groups}, nil
	}))
}

func sourceEndpoint(dbType, access string, in *srcInfoIn, cat jobs.Catalog) (engine.Endpoint, error) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	ep := engine.Endpoint{DatabaseType: dbType, Host: str(in.Ip), User: str(in.User), Password: str(in.Password)}
	if in.Port != nil {
		ep.Port = int(*in.Port)
	}
	if access == "cdb" {
		id := str(in.InstanceId)
		if id == "" {
			return ep, missing("SrcInfo.InstanceId")
		}
		inst, err := cat.Lookup(id)
		if err != nil {
			return ep, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "SrcInfo.InstanceId %q is not in the instance catalogue.", id)
		}
		ep.InstanceID, ep.Host, ep.Port = id, inst.Host, inst.Port
		if ep.User == "" {
			ep.User, ep.Password = inst.User, inst.Password
		}
		return ep, nil
	}
	if ep.Host == "" {
		return ep, missing("SrcInfo.Ip")
	}
	if ep.Port < 1 || ep.Port > 65535 {
		return ep, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "SrcInfo.Port must be from 1 to 65535, not %d.", ep.Port)
	}
	if ep.User == "" {
		return ep, missing("SrcInfo.User")
	}
	return ep, nil
}

// sourceErrText is a driver error without anything of the password.
func sourceErrText(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("error %d: %s", me.Number, me.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in " + sourceObjectsWait.String()
	}
	return err.Error()
}

func mysqlObjects(ctx context.Context, ep engine.Endpoint) ([]objectGroup, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net = ep.User, ep.Password, "tcp"
	cfg.Addr = net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	cfg.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(ctx, `SELECT s.SCHEMA_NAME, t.TABLE_NAME FROM information_schema.SCHEMATA s
		LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME AND t.TABLE_TYPE = 'BASE TABLE'
		ORDER BY s.SCHEMA_NAME, t.TABLE_NAME`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []objectGroup
	for rows.Next() {
		var dbName string
		var table sql.NullString
		if err := rows.Scan(&dbName, &table); err != nil {
			return nil, err
		}
		if systemDatabases[strings.ToLower(dbName)] {
			continue
		}
		out = addObject(out, dbName, "", table)
	}
	return out, rows.Err()
}

// addObject appends a table to the last group, or starts a group; it
// keeps the bounds.
func addObject(out []objectGroup, db, schema string, table sql.NullString) []objectGroup {
	if n := len(out); n == 0 || out[n-1].Database != db || out[n-1].Schema != schema {
		if n >= maxObjectGroups {
			return out
		}
		out = append(out, objectGroup{Database: db, Schema: schema, Tables: []string{}})
	}
	g := &out[len(out)-1]
	if table.Valid {
		if len(g.Tables) >= maxObjectTables {
			g.Truncated = true
		} else {
			g.Tables = append(g.Tables, table.String)
		}
	}
	return out
}

func postgresConn(ctx context.Context, ep engine.Endpoint, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("sslmode=prefer")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = ep.Host, uint16(ep.Port), ep.User, ep.Password, db
	cfg.ConnectTimeout = 5 * time.Second
	cfg.RuntimeParams = map[string]string{"default_transaction_read_only": "on", "application_name": "opendts-console"}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(ctx, cfg)
}

func postgresObjects(ctx context.Context, ep engine.Endpoint) ([]objectGroup, error) {
	home, err := postgresConn(ctx, ep, "postgres")
	if err != nil {
		return nil, err
	}
	defer home.Close(context.Background())
	rows, err := home.Query(ctx, `SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname LIMIT $1`, maxObjectPGDBs)
	if err != nil {
		return nil, err
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var out []objectGroup
	for _, db := range dbs {
		if db == "postgres" {
			continue
		}
		c, err := postgresConn(ctx, ep, db)
		if err != nil {
			// A database this user may not connect to is left out.
			continue
		}
		rows, err := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_namespace n
			LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') AND NOT c.relispartition
			WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\_%'
			ORDER BY n.nspname, c.relname`)
		if err != nil {
			c.Close(context.Background())
			return nil, err
		}
		for rows.Next() {
			var schema string
			var table sql.NullString
			if err := rows.Scan(&schema, &table); err != nil {
				rows.Close()
				c.Close(context.Background())
				return nil, err
			}
			out = addObject(out, db, schema, table)
		}
		rows.Close()
		c.Close(context.Background())
	}
	return out, nil
}
