package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/client"
	"github.com/opendts/opendts/internal/testdb"
	"github.com/opendts/opendts/internal/testpg"
)

func (s *server) call(t *testing.T, action string, params any) (map[string]any, *client.APIError) {
	t.Helper()
	c := &client.Client{Endpoint: s.addr, SecretID: "AKIDe2e", SecretKey: "e2e-key", Region: "ap-guangzhou", Version: "2018-03-30"}
	out, err := c.Call(context.Background(), action, params)
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return nil, apiErr
	}
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return out, nil
}

type objectGroups []struct {
	Database, Schema string
	Tables           []string
	Truncated        bool
}

func groupsOf(t *testing.T, out map[string]any) objectGroups {
	t.Helper()
	b, _ := json.Marshal(out["Objects"])
	var g objectGroups
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// The console's extension actions, through a signed request as any client
// sends it: the objects of a MariaDB and of a PostgreSQL source, the
// errors a form shows at its fields, and the lag history of an unknown job.
func TestConsoleExtensionActions(t *testing.T) {
	src, _ := testdb.Shared(t)
	db := src.NewDatabase(t, "consoleobj")
	src.Exec(t, "CREATE TABLE `"+db+"`.b (id INT PRIMARY KEY)", "CREATE TABLE `"+db+"`.a (id INT PRIMARY KEY)",
		"CREATE VIEW `"+db+"`.v AS SELECT id FROM `"+db+"`.a")
	empty := src.NewDatabase(t, "consoleempty")
	s := startServer(t)

	out, apiErr := s.call(t, "DescribeMigrateSourceObjects", map[string]any{
		"SrcDatabaseType": "mariadb", "SrcAccessType": "extranet",
		"SrcInfo": map[string]any{"Ip": src.Host, "Port": src.Port, "User": "root", "Password": ""},
	})
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	found := map[string][]string{}
	for _, g := range groupsOf(t, out) {
		if g.Schema != "" || g.Truncated {
			t.Errorf("a MySQL group %+v", g)
		}
		found[g.Database] = g.Tables
	}
	if got := strings.Join(found[db], ","); got != "a,b" {
		t.Errorf("the tables of %s: %q (sorted base tables, no view)", db, got)
	}
	if tables, ok := found[empty]; !ok || len(tables) != 0 {
		t.Errorf("an empty database: %v, %v", tables, ok)
	}
	for _, sys := range []string{"mysql", "information_schema", "performance_schema", "sys"} {
		if _, ok := found[sys]; ok {
			t.Errorf("the system database %s is listed", sys)
		}
	}

	// The errors name the field, and never carry the password.
	_, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{
		"SrcDatabaseType": "mariadb", "SrcAccessType": "extranet", "SrcInfo": map[string]any{"Port": 3306, "User": "root"},
	})
	if apiErr == nil || apiErr.Code != "MissingParameter" || !strings.Contains(apiErr.Message, "SrcInfo.Ip") {
		t.Errorf("without Ip: %v", apiErr)
	}
	_, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{
		"SrcDatabaseType": "mariadb", "SrcAccessType": "extranet",
		"SrcInfo": map[string]any{"Ip": src.Host, "Port": src.Port, "User": "nobody_here", "Password": "s3cret-pw"},
	})
	if apiErr == nil || apiErr.Code != "FailedOperation" || strings.Contains(apiErr.Message, "s3cret-pw") || !strings.Contains(apiErr.Message, "1045") {
		t.Errorf("a refused login: %v", apiErr)
	}
	_, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{
		"SrcDatabaseType": "mariadb", "SrcAccessType": "cdb", "SrcInfo": map[string]any{"InstanceId": "cdb-nothere"},
	})
	if apiErr == nil || apiErr.Code != "InvalidParameterValue" || !strings.Contains(apiErr.Message, "SrcInfo.InstanceId") {
		t.Errorf("an unknown InstanceId: %v", apiErr)
	}
	// A job's stored source, with its stored password.
	user := src.NewUser(t, "console_reader", "reader-pw", "SELECT ON *.*")
	created, apiErr := s.call(t, "CreateMigrateJob", map[string]any{
		"JobName": "objects of a job", "MigrateOption": map[string]any{"RunMode": 1, "MigrateType": 2},
		"SrcDatabaseType": "mariadb", "SrcAccessType": "extranet",
		"SrcInfo":         map[string]any{"Ip": src.Host, "Port": src.Port, "User": user, "Password": "reader-pw"},
		"DstDatabaseType": "mariadb", "DstAccessType": "extranet",
		"DstInfo":      map[string]any{"Ip": src.Host, "Port": src.Port, "User": "root", "Password": ""},
		"DatabaseInfo": `[{"Database":"` + db + `"}]`,
	})
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	jobID, _ := created["JobId"].(string)
	time.Sleep(time.Second) // the action's limit is 5 per second
	out, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{"JobId": jobID})
	if apiErr != nil {
		t.Fatalf("the objects of job %s: %v", jobID, apiErr)
	}
	listed := false
	for _, g := range groupsOf(t, out) {
		listed = listed || g.Database == db && strings.Join(g.Tables, ",") == "a,b"
	}
	if !listed {
		t.Errorf("the objects of job %s: %v", jobID, out)
	}
	_, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{"JobId": jobID, "SrcDatabaseType": "mariadb"})
	if apiErr == nil || apiErr.Code != "InvalidParameter" {
		t.Errorf("JobId and a source: %v", apiErr)
	}
	_, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{"JobId": "dts-nothere"})
	if apiErr == nil || apiErr.Code != "ResourceNotFound.JobNotExist" {
		t.Errorf("the objects of an unknown job: %v", apiErr)
	}
	_, apiErr = s.call(t, "DescribeMigrateJobLagHistory", map[string]any{"JobId": "dts-nothere"})
	if apiErr == nil || apiErr.Code != "ResourceNotFound.JobNotExist" {
		t.Errorf("the lag history of an unknown job: %v", apiErr)
	}

	// PostgreSQL: a group per schema of each database the role may reach.
	psrc, _ := testpg.Shared(t)
	pdb := psrc.NewDatabase(t, "consoleobj")
	psrc.Exec(t, pdb, "CREATE SCHEMA s1", "CREATE TABLE s1.t2 (id int primary key)", "CREATE TABLE s1.t1 (id int primary key)",
		"CREATE TABLE public.p (id int)")
	reader := psrc.NewRole(t, "console_reader", "reader-pw")
	psrc.Exec(t, "postgres", "GRANT pg_read_all_data TO "+reader)
	out, apiErr = s.call(t, "DescribeMigrateSourceObjects", map[string]any{
		"SrcDatabaseType": "postgresql", "SrcAccessType": "extranet",
		"SrcInfo": map[string]any{"Ip": psrc.Host, "Port": psrc.Port, "User": reader, "Password": "reader-pw"},
	})
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	pg := map[string]string{}
	for _, g := range groupsOf(t, out) {
		if g.Database == pdb {
			pg[g.Schema] = strings.Join(g.Tables, ",")
		}
		if g.Database == "postgres" || strings.HasPrefix(g.Schema, "pg_") || g.Schema == "information_schema" {
			t.Errorf("a system group %+v", g)
		}
	}
	if pg["s1"] != "t1,t2" || pg["public"] != "p" {
		t.Errorf("the schemas of %s: %v", pdb, pg)
	}
}
