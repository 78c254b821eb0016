package dtsapi_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
)

func modify(e *env, id string, set func(*dts.ModifyMigrateJobRequest)) error {
	m := dts.NewModifyMigrateJobRequest()
	m.JobId = sp(id)
	if set != nil {
		set(m)
	}
	_, err := e.client().ModifyMigrateJob(m)
	return err
}

func TestModifyKeepsWhatIsNotSent(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("keep"))
	before := e.describe(id)
	err := modify(e, id, func(m *dts.ModifyMigrateJobRequest) {
		m.JobName = sp("kept")
		// SrcInfo without a Password: the stored one stays.
		m.SrcInfo = &dts.SrcInfo{Ip: sp("10.0.0.9")}
	})
	wantCode(t, err, "InvalidParameter", "SrcInfo.Password")
	err = modify(e, id, func(m *dts.ModifyMigrateJobRequest) {
		m.JobName = sp("kept")
		m.SrcInfo = &dts.SrcInfo{User: sp("dts2")}
	})
	if err != nil {
		t.Fatal(err)
	}
	after := e.describe(id)
	if *after.JobName != "kept" || *after.SrcInfo.User != "dts2" {
		t.Errorf("sent fields not applied: %s %s", *after.JobName, *after.SrcInfo.Ip)
	}
	if *after.SrcInfo.Port != *before.SrcInfo.Port || *after.SrcInfo.Ip != "10.0.0.1" || *after.DatabaseInfo != *before.DatabaseInfo ||
		*after.MigrateOption.MigrateType != 2 || *after.DstInfo.Ip != "10.0.0.2" {
		t.Errorf("unsent fields changed: %+v", after)
	}
	stored, err := e.app.JobStore().GetJob(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Src.Password != "src-pa$$word" {
		t.Error("the source password was lost by a SrcInfo without Password")
	}
	// A Password sent replaces it.
	if err := modify(e, id, func(m *dts.ModifyMigrateJobRequest) {
		m.SrcInfo = &dts.SrcInfo{Ip: sp("10.0.0.9"), Password: sp("new secret")}
	}); err != nil {
		t.Fatal(err)
	}
	stored, _ = e.app.JobStore().GetJob(t.Context(), id)
	if stored.Src.Password != "new secret" || stored.Src.Ip != "10.0.0.9" {
		t.Errorf("password %q ip %q", stored.Src.Password, stored.Src.Ip)
	}
	// Switching to the whole instance drops the selection.
	if err := modify(e, id, func(m *dts.ModifyMigrateJobRequest) {
		m.MigrateOption = &dts.MigrateOption{MigrateObject: ip(1)}
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.describe(id); *got.DatabaseInfo != "[]" || *got.MigrateOption.MigrateObject != 1 || *got.MigrateOption.RunMode != 1 {
		t.Errorf("whole instance: DatabaseInfo %s object %d", *got.DatabaseInfo, *got.MigrateOption.MigrateObject)
	}
}

func TestModifyResetsCheckAndStatus(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("recheck")
	req.SrcInfo.User = sp("denied")
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 5)
	if err := modify(e, id, func(m *dts.ModifyMigrateJobRequest) { m.SrcInfo = &dts.SrcInfo{User: sp("dts")} }); err != nil {
		t.Fatal(err)
	}
	if got := e.describe(id); *got.Status != 1 {
		t.Errorf("status after modify = %d, want 1", *got.Status)
	}
	c := dts.NewDescribeMigrateCheckJobRequest()
	c.JobId = sp(id)
	resp, err := e.client().DescribeMigrateCheckJob(c)
	if err != nil {
		t.Fatal(err)
	}
	if *resp.Response.Status != "unavailable" || *resp.Response.CheckFlag != 3 {
		t.Errorf("check after modify: %s flag %d", *resp.Response.Status, *resp.Response.CheckFlag)
	}
	// A passed check is also cleared by a modification.
	e.check(id)
	e.waitStatus(id, 4)
	if err := modify(e, id, func(m *dts.ModifyMigrateJobRequest) { m.JobName = sp("x") }); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 1)
	wantCode(t, e.jobCall("Start", id), "FailedOperation.NotAllowOperation", "status 1")
}

func TestModifyErrors(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("errors"))
	tests := []struct {
		name    string
		set     func(*dts.ModifyMigrateJobRequest)
		code    string
		mention string
	}{
		{"DatabaseInfo not JSON", func(m *dts.ModifyMigrateJobRequest) { m.DatabaseInfo = sp(`[{Database:db1}]`) }, "InvalidParameter", "DatabaseInfo"},
		{"Schema for a MySQL source", func(m *dts.ModifyMigrateJobRequest) {
			m.DatabaseInfo = sp(`[{"Database":"db1","Schema":"s1","Table":["t"]}]`)
		}, "InvalidParameter", "Schema"},
		{"database without a name", func(m *dts.ModifyMigrateJobRequest) { m.DatabaseInfo = sp(`[{"Table":["t"]}]`) }, "InvalidParameter", "Database"},
		{"database twice", func(m *dts.ModifyMigrateJobRequest) {
			m.DatabaseInfo = sp(`[{"Database":"a"},{"Database":"a","Table":["t"]}]`)
		}, "InvalidParameter", `"a"`},
		{"chosen objects without a selection", func(m *dts.ModifyMigrateJobRequest) { m.DatabaseInfo = sp(`[]`) }, "InvalidParameter", "MigrateObject"},
		{"target region", func(m *dts.ModifyMigrateJobRequest) { m.DstInfo = &dts.DstInfo{Region: sp("ap-shanghai")} }, "InvalidParameter", "region"},
		{"RunMode", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{RunMode: ip(3)} }, "InvalidParameterValue", "RunMode"},
		{"scheduled without time", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{RunMode: ip(2)} }, "InvalidParameter", "ExpectTime"},
		{"scheduled with a bad time", func(m *dts.ModifyMigrateJobRequest) {
			m.MigrateOption = &dts.MigrateOption{RunMode: ip(2), ExpectTime: sp("tomorrow")}
		}, "InvalidParameter", "ExpectTime"},
		{"MigrateType", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{MigrateType: ip(4)} }, "InvalidParameterValue", "MigrateType"},
		{"MigrateObject", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{MigrateObject: ip(0)} }, "InvalidParameterValue", "MigrateObject"},
		{"ConsistencyType", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{ConsistencyType: ip(6)} }, "InvalidParameterValue", "ConsistencyType"},
		{"sampling without params", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{ConsistencyType: ip(3)} }, "InvalidParameterValue", "ConsistencyParams"},
		{"sampling over 100", func(m *dts.ModifyMigrateJobRequest) {
			m.MigrateOption = &dts.MigrateOption{ConsistencyType: ip(3), ConsistencyParams: &dts.ConsistencyParams{SelectRowsPerTable: ip(101), TablesSelectAll: ip(1), TablesSelectCount: ip(1)}}
		}, "InvalidParameterValue", "SelectRowsPerTable"},
		{"override root with chosen objects", func(m *dts.ModifyMigrateJobRequest) { m.MigrateOption = &dts.MigrateOption{IsOverrideRoot: ip(1)} }, "InvalidParameter", "IsOverrideRoot"},
		{"access type", func(m *dts.ModifyMigrateJobRequest) {
			m.SrcAccessType = sp("carrier-pigeon")
			m.SrcInfo = &dts.SrcInfo{Password: sp("p")}
		}, "InvalidParameterValue", "SrcAccessType"},
		{"port", func(m *dts.ModifyMigrateJobRequest) { m.SrcInfo = &dts.SrcInfo{Port: ip(70000), Password: sp("p")} }, "InvalidParameterValue", "Port"},
		{"new address without the password", func(m *dts.ModifyMigrateJobRequest) { m.DstInfo = &dts.DstInfo{Ip: sp("10.9.9.9")} }, "InvalidParameter", "DstInfo.Password"},
		{"supplier", func(m *dts.ModifyMigrateJobRequest) { m.SrcInfo = &dts.SrcInfo{Supplier: sp("aws")} }, "InvalidParameterValue", "Supplier"},
		{"read only", func(m *dts.ModifyMigrateJobRequest) { m.DstInfo = &dts.DstInfo{ReadOnly: ip(2)} }, "InvalidParameterValue", "ReadOnly"},
		{"cdb without instance", func(m *dts.ModifyMigrateJobRequest) {
			m.DstAccessType = sp("cdb")
			m.DstInfo = &dts.DstInfo{Password: sp("p")}
		}, "InvalidParameter", "InstanceId"},
		{"unknown job", func(m *dts.ModifyMigrateJobRequest) { m.JobId = sp("dts-zzzzzzzz") }, "ResourceNotFound.JobNotExist", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, modify(e, id, tt.set), tt.code, tt.mention)
		})
	}
	// None of the refused modifications changed the job.
	if got := e.describe(id); *got.JobName != "errors" || *got.DatabaseInfo != `[{"Database":"shop","Table":["orders","users"]}]` {
		t.Errorf("a refused modification changed the job: %s %s", *got.JobName, *got.DatabaseInfo)
	}
	t.Run("database type", func(t *testing.T) {
		resp := e.rawTC3("ModifyMigrateJob", `{"JobId":"`+id+`","SrcDatabaseType":"postgresql"}`, nil)
		if errCode(resp) != "InvalidParameter" || !strings.Contains(errMessage(resp), "database type") {
			t.Errorf("got %s %s", errCode(resp), errMessage(resp))
		}
	})
}

func TestModifyNotAllowedWhileRunning(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("running"))
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 7)
	wantCode(t, modify(e, id, func(m *dts.ModifyMigrateJobRequest) { m.JobName = sp("x") }), "FailedOperation.NotAllowOperation", "status 7", "1, 4, 5, 10")
	// After it fails, it may be modified again, and returns to 1.
	e.engine.Finish(id, errors.New("source connection lost"))
	failed := e.waitStatus(id, 10)
	if len(failed.ErrorInfo) != 1 || !strings.Contains(*failed.ErrorInfo[0].ErrorLog, "source connection lost") {
		t.Errorf("ErrorInfo %s", mustJSON(failed.ErrorInfo))
	}
	if err := modify(e, id, func(m *dts.ModifyMigrateJobRequest) { m.JobName = sp("retry") }); err != nil {
		t.Fatal(err)
	}
	if got := e.waitStatus(id, 1); len(got.ErrorInfo) != 0 || *got.StartTime != "0000-00-00 00:00:00" {
		t.Errorf("a modified failed job keeps its old run: %+v %s", got.ErrorInfo, *got.StartTime)
	}
}

// The store failing is InternalError.DatabaseError with a message, never a
// crash or a hang.
func TestStoreFailureIsDatabaseError(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("store"))
	if err := e.app.JobStore().(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, modify(e, id, func(m *dts.ModifyMigrateJobRequest) { m.JobName = sp("x") }), "InternalError.DatabaseError", "job store")
	_, err := e.client().DescribeMigrateJobs(dts.NewDescribeMigrateJobsRequest())
	wantCode(t, err, "InternalError.DatabaseError")
	e.app = nil // already closed
}

func TestInstanceCatalogue(t *testing.T) {
	var dir string
	e := newEnv(t, func(c *app.Config) { dir = c.DataDir })
	catalogue := `[{"InstanceId":"cdb-target01","Engine":"mariadb","Host":"10.0.0.2","Port":3306,"User":"cat","Password":"catpw"},
		{"InstanceId":"pg-1","Engine":"postgresql","Host":"10.0.0.3","Port":5432}]`
	if err := os.WriteFile(filepath.Join(dir, "instances.json"), []byte(catalogue), 0o600); err != nil {
		t.Fatal(err)
	}
	req := newJobRequest("by id")
	req.DstAccessType = sp("cdb")
	req.DstInfo = &dts.DstInfo{InstanceId: sp("cdb-target01"), Region: sp(testRegion)}
	id := e.create(req)
	if got := e.describe(id); *got.DstInfo.InstanceId != "cdb-target01" || *got.DstAccessType != "cdb" {
		t.Errorf("DstInfo %+v", got.DstInfo)
	}
	// The catalogue id and its address are one instance: a job by address
	// cannot start while the job by id runs.
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 7)
	dup := e.create(newJobRequest("by address"))
	e.check(dup)
	e.waitStatus(dup, 5)
	if err := e.jobCall("Start", dup); codeOf(t, err) != "FailedOperation.NotAllowOperation" {
		t.Fatalf("start after a failed check: %v", err)
	}
	if msg := checkResult(t, e, dup)["ErrorMessage"].(string); !strings.Contains(msg, "DuplicateJobCheck") || !strings.Contains(msg, id) {
		t.Errorf("the check does not name the running job %s: %s", id, msg)
	}
	var err error

	req.DstInfo.InstanceId = sp("cdb-missing")
	_, err = e.client().CreateMigrateJob(req)
	wantCode(t, err, "InvalidParameterValue", "cdb-missing")
	req.DstInfo.InstanceId = sp("pg-1")
	_, err = e.client().CreateMigrateJob(req)
	wantCode(t, err, "InvalidParameterValue", "postgresql")
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		set     func(*dts.CreateMigrateJobRequest)
		code    string
		mention string
	}{
		{"no name", func(r *dts.CreateMigrateJobRequest) { r.JobName = nil }, "MissingParameter", "JobName"},
		{"no option", func(r *dts.CreateMigrateJobRequest) { r.MigrateOption = nil }, "MissingParameter", "MigrateOption"},
		{"no run mode", func(r *dts.CreateMigrateJobRequest) { r.MigrateOption.RunMode = nil }, "MissingParameter", "RunMode"},
		{"no source", func(r *dts.CreateMigrateJobRequest) { r.SrcInfo = nil }, "MissingParameter", "SrcInfo"},
		{"unknown database type", func(r *dts.CreateMigrateJobRequest) { r.SrcDatabaseType = sp("oracle") }, "InvalidParameterValue", "oracle"},
		{"families differ", func(r *dts.CreateMigrateJobRequest) { r.DstDatabaseType = sp("redis") }, "InvalidParameterValue", "family"},
		{"whole instance with a selection", func(r *dts.CreateMigrateJobRequest) { r.MigrateOption.MigrateObject = ip(1) }, "InvalidParameter", "DatabaseInfo"},
		{"no source address", func(r *dts.CreateMigrateJobRequest) { r.SrcInfo.Ip = nil }, "InvalidParameter", "SrcInfo.Ip"},
		{"bad host", func(r *dts.CreateMigrateJobRequest) { r.SrcInfo.Ip = sp("no such host!") }, "InvalidParameterValue", "SrcInfo.Ip"},
		{"no target user", func(r *dts.CreateMigrateJobRequest) { r.DstInfo.User = nil }, "InvalidParameter", "DstInfo.User"},
		{"unserved target region", func(r *dts.CreateMigrateJobRequest) { r.DstInfo.Region = sp("eu-moscow") }, "InvalidParameterValue", "eu-moscow"},
		{"extern params not JSON", func(r *dts.CreateMigrateJobRequest) { r.MigrateOption.ExternParams = sp("{") }, "InvalidParameter", "ExternParams"},
		{"empty table list", func(r *dts.CreateMigrateJobRequest) { r.DatabaseInfo = sp(`[{"Database":"a","Table":[]}]`) }, "InvalidParameter", "Table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newJobRequest(tt.name)
			tt.set(req)
			_, err := e.client().CreateMigrateJob(req)
			wantCode(t, err, tt.code, tt.mention)
		})
	}
	t.Run("MigrateObject defaults from the selection", func(t *testing.T) {
		req := newJobRequest("defaults")
		req.MigrateOption.MigrateObject = nil
		req.MigrateOption.ConsistencyType = nil
		id := e.create(req)
		got := e.describe(id)
		if *got.MigrateOption.MigrateObject != 2 || *got.MigrateOption.ConsistencyType != 1 {
			t.Errorf("MigrateObject %d ConsistencyType %d", *got.MigrateOption.MigrateObject, *got.MigrateOption.ConsistencyType)
		}
	})
	// A JSON body has types: a Port in quotes is refused, naming the
	// parameter and the type (form and GET encodings carry text and are
	// converted).
	t.Run("port as a JSON string", func(t *testing.T) {
		req := newJobRequest("string port")
		req.DatabaseInfo = sp(`[{"Database":"strport"}]`)
		body, _ := json.Marshal(req)
		text := strings.Replace(string(body), `"Port":3306`, `"Port":"3306"`, 1)
		resp := e.rawTC3("CreateMigrateJob", text, nil)
		if errCode(resp) != "InvalidParameter" || !strings.Contains(errMessage(resp), "`SrcInfo.Port`") {
			t.Fatalf("%s %s", errCode(resp), errMessage(resp))
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
