package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdk "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/testpg"
)

// pgRoles makes the accounts a DBA would give opendts: on the source a
// role that reads everything, on the target one that may create
// databases and keep opendts's state in database postgres. Both log in
// with a password (scram-sha-256), never as the superuser.
func pgRoles(t *testing.T, src, dst *testpg.Server) (srcUser, dstUser string) {
	srcUser = src.NewRole(t, "e2e_reader", "reader-pw")
	src.Exec(t, "postgres", "GRANT pg_read_all_data TO "+srcUser)
	dstUser = dst.NewRole(t, "e2e_writer", "writer-pw", "CREATEDB")
	dst.Exec(t, "postgres", "GRANT CREATE ON DATABASE postgres TO "+dstUser)
	return srcUser, dstUser
}

// createPGJob creates a postgresql → postgresql job through the Go SDK,
// checks it and waits for the check to pass.
func (s *server) createPGJob(src, dst *testpg.Server, srcUser, dstUser, databaseInfo string, migrateType, consistency int64) string {
	s.t.Helper()
	req := sdk.NewCreateMigrateJobRequest()
	req.JobName = sp("pg e2e")
	req.MigrateOption = &sdk.MigrateOption{RunMode: ip(1), MigrateType: ip(migrateType), MigrateObject: ip(2), ConsistencyType: ip(consistency)}
	req.SrcDatabaseType, req.SrcAccessType = sp("postgresql"), sp("extranet")
	req.SrcInfo = &sdk.SrcInfo{Ip: sp(src.Host), Port: ip(int64(src.Port)), User: sp(srcUser), Password: sp("reader-pw")}
	req.DstDatabaseType, req.DstAccessType = sp("postgresql"), sp("extranet")
	req.DstInfo = &sdk.DstInfo{Ip: sp(dst.Host), Port: ip(int64(dst.Port)), User: sp(dstUser), Password: sp("writer-pw")}
	req.DatabaseInfo = sp(databaseInfo)
	resp, err := s.client().CreateMigrateJob(req)
	if err != nil {
		s.t.Fatal(err)
	}
	id := *resp.Response.JobId
	check := sdk.NewCreateMigrateCheckJobRequest()
	check.JobId = &id
	if _, err := s.client().CreateMigrateCheckJob(check); err != nil {
		s.t.Fatal(err)
	}
	s.waitCheck(id)
	return id
}

// waitCheck waits for a check to end and fails the test, with the items
// that did not pass, unless it passed.
func (s *server) waitCheck(id string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req := sdk.NewDescribeMigrateCheckJobRequest()
		req.JobId = &id
		resp, err := s.client().DescribeMigrateCheckJob(req)
		if err != nil {
			s.t.Fatal(err)
		}
		r := resp.Response
		if r.Status != nil && *r.Status == "finished" {
			if *r.CheckFlag == 1 {
				return
			}
			s.t.Fatalf("check failed: %s", *r.ErrorMessage)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("the check did not end in 30 s")
}

// A PostgreSQL full migration through the API, as a DBA's password
// accounts, survives a SIGKILL of `opendts serve` during its copy: after
// the restart it resumes from the committed chunks, ends at status 9,
// and the target holds exactly the source's rows, a keyless table with
// duplicate rows included.
func TestPostgresKillDuringCopyResumes(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "e2epg")
	t.Cleanup(func() { dst.DropDatabase(db) })
	src.Exec(t, db,
		`CREATE TABLE t (id int PRIMARY KEY, v text, b bytea)`,
		`INSERT INTO t SELECT g, 'значение ' || g, decode(repeat(md5(g::text), 8), 'hex') FROM generate_series(1, 200000) g`,
		`CREATE TABLE dup (a int, b text)`,
		`INSERT INTO dup VALUES (1, 'a'), (1, 'a'), (NULL, NULL)`,
		`ANALYZE`)
	srcUser, dstUser := pgRoles(t, src, dst)
	t.Cleanup(func() { dst.DropRole(dstUser) })
	s := startServer(t)
	id := s.createPGJob(src, dst, srcUser, dstUser, fmt.Sprintf(`[{"Database":%q}]`, db), 2, 2)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	var chunks int
	for time.Now().Before(deadline) {
		if c, err := testpgConn(dst, db); err == nil {
			_ = c.QueryRow(ctx, "SELECT count(*) FROM _opendts.migrate_chunks WHERE job_id = $1", id).Scan(&chunks)
			c.Close(ctx)
		}
		if chunks >= 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.kill()
	t.Logf("server log: %s", tail(s.log.Name()))
	var copied int
	if c, err := testpgConn(dst, db); err == nil {
		_ = c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&copied)
		c.Close(ctx)
	}
	t.Logf("killed with %d chunks committed, %d of 200000 rows on the target", chunks, copied)
	if chunks < 3 || copied >= 200000 {
		t.Fatalf("the kill did not land during the copy (%d chunks, %d rows)", chunks, copied)
	}
	s.start()
	s.wait(id, 9, 90*time.Second)
	pgSame(t, src, dst, db, map[string]string{"postgres": dstUser})
	log := readAll(s.log.Name())
	if !strings.Contains(log, "resuming") {
		t.Error("the log does not say the job resumed")
	}
	for _, pw := range []string{"reader-pw", "writer-pw"} {
		if strings.Contains(log, pw) {
			t.Errorf("a password is in the server's log")
		}
	}
}

func testpgConn(s *testpg.Server, db string) (*pgx.Conn, error) {
	return pgx.Connect(context.Background(), s.SuperURL(db))
}

// pgSame compares db on both sides with internal/testpg's comparison
// (schema as pg_dump prints it, rows, sequences). The target user could
// not give objects to the source's owners, so they are its own: roles
// maps each source owner to it.
func pgSame(t *testing.T, src, dst *testpg.Server, db string, roles map[string]string) {
	t.Helper()
	testpg.CompareDatabaseWith(t, src, dst, db, db, testpg.CompareOptions{NoDatabase: true, Roles: roles})
}

// A PostgreSQL full + incremental job through the API under a live write
// load survives a SIGKILL of `opendts serve` during its copy (the copy
// resumes from a new snapshot whose boundary the stream respects) and
// another during its incremental phase; after Complete the target equals
// the source: nothing lost, nothing applied twice (counters included).
func TestPostgresIncrementalSurvivesKillsAndCompletes(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "e2epgcdc")
	t.Cleanup(func() { dst.DropDatabase(db) })
	// The source role replicates and owns the tables (a publication FOR
	// TABLE needs that); the target role is a superuser, as PostgreSQL's
	// own subscriptions need, so that triggers and foreign keys do not
	// act on replicated changes.
	srcUser := src.NewRole(t, "e2e_repl", "reader-pw", "REPLICATION")
	dstUser := dst.NewRole(t, "e2e_super", "writer-pw", "SUPERUSER")
	src.Exec(t, db,
		`CREATE TABLE t (id int PRIMARY KEY, v text, n bigint)`,
		`INSERT INTO t SELECT g, 'v' || g, g FROM generate_series(1, 60000) g`,
		`CREATE TABLE log (at int, what text)`,
		`ALTER TABLE log REPLICA IDENTITY FULL`,
		`INSERT INTO log SELECT g % 10, repeat('x', 200) FROM generate_series(1, 150000) g`,
		// TOASTed values updated around (pgoutput sends them as unchanged)
		// and a table emptied by TRUNCATE now and then.
		`CREATE TABLE docs (id int PRIMARY KEY, body text, rev int)`,
		`INSERT INTO docs SELECT g, (SELECT string_agg(md5(x::text || g), '') FROM generate_series(1, 1500 + g * 0) x), 0 FROM generate_series(1, 20) g`,
		`CREATE TABLE scratch (id int PRIMARY KEY)`,
		`ANALYZE`,
		`ALTER TABLE t OWNER TO `+srcUser, `ALTER TABLE log OWNER TO `+srcUser,
		`ALTER TABLE docs OWNER TO `+srcUser, `ALTER TABLE scratch OWNER TO `+srcUser,
		`GRANT CREATE ON DATABASE `+db+` TO `+srcUser)
	s := startServer(t)

	stop := make(chan struct{})
	writes := make(chan int, 1)
	go func() {
		ctx := context.Background()
		c, err := testpgConn(src, db)
		if err != nil {
			writes <- 0
			return
		}
		defer c.Close(ctx)
		n := 0
		for {
			select {
			case <-stop:
				writes <- n
				return
			default:
			}
			n++
			batch := fmt.Sprintf(`BEGIN;
				UPDATE t SET n = n + 1, v = 'changed' WHERE id = %[1]d;
				INSERT INTO t (id, v, n) VALUES (%[2]d, 'new', 0);
				DELETE FROM t WHERE id = %[3]d;
				UPDATE t SET id = id + 1000000 WHERE id = %[4]d;
				INSERT INTO log VALUES (%[5]d, 'x');
				UPDATE log SET what = 'y' WHERE ctid = (SELECT ctid FROM log WHERE at = %[6]d LIMIT 1);
				DELETE FROM log WHERE ctid = (SELECT ctid FROM log WHERE at = %[7]d LIMIT 1);
				UPDATE docs SET rev = rev + 1 WHERE id = %[8]d;
				INSERT INTO scratch VALUES (%[9]d);
				COMMIT`, n%60000+1, 100000+n, (n*7)%60000+1, (n*13)%60000+1, n%10, (n+3)%10, (n+5)%10, n%20+1, n)
			if n%50 == 0 {
				batch += "; TRUNCATE scratch"
			}
			if _, err := c.Exec(ctx, batch); err != nil {
				c.Exec(ctx, "ROLLBACK")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	req := sdk.NewCreateMigrateJobRequest()
	req.JobName = sp("pg e2e cdc")
	req.MigrateOption = &sdk.MigrateOption{RunMode: ip(1), MigrateType: ip(3), MigrateObject: ip(2), ConsistencyType: ip(5)}
	req.SrcDatabaseType, req.SrcAccessType = sp("postgresql"), sp("extranet")
	req.SrcInfo = &sdk.SrcInfo{Ip: sp(src.Host), Port: ip(int64(src.Port)), User: sp(srcUser), Password: sp("reader-pw")}
	req.DstDatabaseType, req.DstAccessType = sp("postgresql"), sp("extranet")
	req.DstInfo = &sdk.DstInfo{Ip: sp(dst.Host), Port: ip(int64(dst.Port)), User: sp(dstUser), Password: sp("writer-pw")}
	req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":%q}]`, db))
	resp, err := s.client().CreateMigrateJob(req)
	if err != nil {
		t.Fatal(err)
	}
	id := *resp.Response.JobId
	check := sdk.NewCreateMigrateCheckJobRequest()
	check.JobId = &id
	if _, err := s.client().CreateMigrateCheckJob(check); err != nil {
		t.Fatal(err)
	}
	s.waitCheck(id)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	var chunks int
	for time.Now().Before(deadline) && chunks < 1 {
		if c, err := testpgConn(dst, db); err == nil {
			_ = c.QueryRow(ctx, "SELECT count(*) FROM _opendts.migrate_chunks WHERE job_id = $1", id).Scan(&chunks)
			c.Close(ctx)
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.kill()
	t.Logf("killed during the copy with %d chunks done", chunks)
	if chunks < 1 {
		t.Fatalf("the kill did not land during the copy; server log: %s", tail(s.log.Name()))
	}
	time.Sleep(300 * time.Millisecond)
	s.start()
	s.wait(id, 8, 90*time.Second)
	time.Sleep(500 * time.Millisecond)
	s.kill()
	time.Sleep(300 * time.Millisecond)
	s.start()
	s.wait(id, 8, 60*time.Second)
	time.Sleep(300 * time.Millisecond)

	close(stop)
	n := <-writes
	complete := sdk.NewCompleteMigrateJobRequest()
	complete.JobId = &id
	if _, err := s.client().CompleteMigrateJob(complete); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 9, 60*time.Second)
	t.Logf("%d source transactions while the job ran", n)
	pgSame(t, src, dst, db, map[string]string{"postgres": dstUser, srcUser: dstUser})
}
