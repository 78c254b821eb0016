package dtsapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
)

func checkResult(t *testing.T, e *env, id string) map[string]any {
	t.Helper()
	resp := e.rawTC3("DescribeMigrateCheckJob", `{"JobId":"`+id+`"}`, nil)
	if errCode(resp) != "" {
		t.Fatalf("%s %s", errCode(resp), errMessage(resp))
	}
	return resp
}

func TestCheckPassesWithWarnings(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("check"))
	c := dts.NewDescribeMigrateCheckJobRequest()
	c.JobId = sp(id)
	resp, err := e.client().DescribeMigrateCheckJob(c)
	if err != nil {
		t.Fatal(err)
	}
	if *resp.Response.Status != "unavailable" || *resp.Response.CheckFlag != 3 {
		t.Errorf("before a check: %s %d", *resp.Response.Status, *resp.Response.CheckFlag)
	}
	e.check(id)
	e.waitStatus(id, 4)
	resp, err = e.client().DescribeMigrateCheckJob(c)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Response
	if *r.Status != "finished" || *r.CheckFlag != 1 || *r.Progress != "100" || *r.ErrorCode != 0 {
		t.Errorf("passed check: %s flag %d progress %s code %d", *r.Status, *r.CheckFlag, *r.Progress, *r.ErrorCode)
	}
	items, _ := checkResult(t, e, id)["CheckItems"].([]any)
	if len(items) != 2 || !strings.Contains(fmt.Sprint(items), "warning") {
		t.Errorf("CheckItems = %v", items)
	}
	// A check may run again at 4.
	e.check(id)
	e.waitStatus(id, 4)
}

func TestCheckFailureNamesTheItems(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("denied")
	req.SrcInfo.User = sp("denied")
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 5)
	resp := checkResult(t, e, id)
	if resp["CheckFlag"].(float64) != 0 || !strings.Contains(resp["ErrorMessage"].(string), "SrcPrivilegeCheck") ||
		!strings.Contains(resp["ErrorMessage"].(string), "GRANT SELECT") {
		t.Errorf("failed check: %v", resp)
	}
	// Checking while a check runs is refused; so is starting a failed job.
	wantCode(t, e.jobCall("Start", id), "FailedOperation.NotAllowOperation", "status 5")
}

// A pair without an engine fails its check with a message saying so, never
// a fake pass.
func TestCheckOfUnsupportedPair(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("pg")
	req.SrcDatabaseType, req.DstDatabaseType = sp("postgresql"), sp("postgresql")
	req.DatabaseInfo = sp(`[{"Database":"app","Schema":"public","Table":["t"]}]`)
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 5)
	resp := checkResult(t, e, id)
	if msg := resp["ErrorMessage"].(string); !strings.Contains(msg, "cannot migrate postgresql into postgresql yet") {
		t.Errorf("message %q", msg)
	}
}

func TestFullMigrationLifecycle(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("full"))
	for _, call := range []string{"Start", "Stop", "Complete"} {
		wantCode(t, e.jobCall(call, id), "FailedOperation.NotAllowOperation", "status 1")
	}
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 7)
	// The driver's steps: structure, dumper, loader (running), objects.
	j := e.waitFor(id, func(j *dts.MigrateJobInfo) bool { return *j.Detail.StepNow == 3 && *j.Detail.Progress == "10" })
	if *j.StartTime == "0000-00-00 00:00:00" || *j.Detail.StepAll != 4 || *j.Detail.StepNow != 3 || *j.Detail.StepInfo[2].StepId != "loader" ||
		*j.Detail.StepInfo[0].Status != 1 || *j.Detail.StepInfo[2].Status != 3 || *j.Detail.StepInfo[3].Status != 4 {
		t.Errorf("running job detail: %s", mustJSON(j.Detail))
	}
	for _, call := range []string{"Start", "Check", "Delete", "Complete"} {
		wantCode(t, e.jobCall(call, id), "FailedOperation.NotAllowOperation", "status 7")
	}
	e.engine.Finish(id, nil)
	j = e.waitStatus(id, 9)
	if *j.EndTime == "0000-00-00 00:00:00" || *j.Detail.Progress != "100" || *j.Detail.StepInfo[0].Status != 1 {
		t.Errorf("finished job: end %s detail %s", *j.EndTime, mustJSON(j.Detail))
	}
	if err := e.jobCall("Delete", id); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.jobCall("Delete", id), "ResourceNotFound.JobNotExist")
}

func TestIncrementalCompleteAndStop(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("incremental")
	req.MigrateOption.MigrateType = ip(3)
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 8)
	j := e.waitFor(id, func(j *dts.MigrateJobInfo) bool { return *j.Detail.SecondsBehindMaster != 0 })
	if *j.Detail.SecondsBehindMaster != 1 || *j.Detail.MasterSlaveDistance != 3 {
		t.Errorf("lag: %d s, %d MB", *j.Detail.SecondsBehindMaster, *j.Detail.MasterSlaveDistance)
	}
	wantCode(t, e.jobCall("Delete", id), "FailedOperation.NotAllowOperation", "status 8")
	if err := e.jobCall("Complete", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 9)

	req = newJobRequest("to stop")
	req.MigrateOption.MigrateType = ip(3)
	req.DatabaseInfo = sp(`[{"Database":"other"}]`)
	id = e.create(req)
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 8)
	if err := e.jobCall("Stop", id); err != nil {
		t.Fatal(err)
	}
	j = e.waitStatus(id, 10)
	if len(j.ErrorInfo) != 1 || !strings.Contains(*j.ErrorInfo[0].ErrorLog, "StopMigrateJob") {
		t.Errorf("stopped job ErrorInfo %s", mustJSON(j.ErrorInfo))
	}
}

func TestScheduledStart(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("later")
	req.MigrateOption.RunMode = ip(2)
	req.MigrateOption.ExpectTime = sp(time.Now().Add(time.Hour).Format("2006-01-02 15:04:05"))
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 6)
	// The wait survives a restart.
	e.restart()
	e.waitStatus(id, 6)
	if err := e.jobCall("Stop", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 10)

	// A time already past starts at once.
	req = newJobRequest("past")
	req.DatabaseInfo = sp(`[{"Database":"past"}]`)
	req.MigrateOption.RunMode = ip(2)
	req.MigrateOption.ExpectTime = sp(time.Now().Add(-time.Minute).Format("2006-01-02 15:04:05"))
	id = e.create(req)
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 7)
	e.engine.Finish(id, nil)
	e.waitStatus(id, 9)
}

func TestStoreSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("durable")
	req.SrcInfo.VpcId = sp("vpc-123")
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 4)
	before, _ := json.Marshal(e.describe(id))
	e.restart()
	after, _ := json.Marshal(e.describe(id))
	if string(before) != string(after) {
		t.Errorf("job changed across a restart:\nbefore %s\nafter  %s", before, after)
	}
	stored, err := e.app.JobStore().GetJob(t.Context(), id)
	if err != nil || stored.Src.Password != "src-pa$$word" {
		t.Errorf("password after restart: %v", err)
	}
}

// A job running when the server stops resumes when it starts again.
func TestRunningJobResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	req := newJobRequest("resume")
	req.MigrateOption.MigrateType = ip(3)
	id := e.create(req)
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 8)
	e.restart()
	e.waitStatus(id, 8)
	if err := e.jobCall("Complete", id); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, 9)
}

func TestDescribeMigrateJobs(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 5; i++ {
		req := newJobRequest(fmt.Sprintf("list-%d", i))
		req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":"db%d"}]`, i))
		if i == 3 {
			req.MigrateOption.MigrateType = ip(3)
		}
		ids = append(ids, e.create(req))
		time.Sleep(2 * time.Millisecond)
	}
	list := func(set func(*dts.DescribeMigrateJobsRequest)) ([]string, uint64) {
		t.Helper()
		r := dts.NewDescribeMigrateJobsRequest()
		set(r)
		resp, err := e.client().DescribeMigrateJobs(r)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range resp.Response.JobList {
			got = append(got, *j.JobId)
		}
		return got, *resp.Response.TotalCount
	}
	got, total := list(func(r *dts.DescribeMigrateJobsRequest) {})
	if total != 5 || len(got) != 5 || got[0] != ids[4] {
		t.Errorf("default order is newest first: %v (total %d)", got, total)
	}
	got, total = list(func(r *dts.DescribeMigrateJobsRequest) {
		r.Order, r.OrderSeq, r.Offset, r.Limit = sp("CreateTime"), sp("ASC"), func() *uint64 { v := uint64(1); return &v }(), func() *uint64 { v := uint64(2); return &v }()
	})
	if total != 5 || strings.Join(got, ",") != ids[1]+","+ids[2] {
		t.Errorf("page 2 of 2 ascending: %v total %d", got, total)
	}
	got, _ = list(func(r *dts.DescribeMigrateJobsRequest) { r.Order, r.OrderSeq = sp("MigrateType"), sp("DESC") })
	if got[0] != ids[3] {
		t.Errorf("by MigrateType: %v", got)
	}
	got, total = list(func(r *dts.DescribeMigrateJobsRequest) { r.JobName = sp("list-2") })
	if total != 1 || got[0] != ids[2] {
		t.Errorf("by name: %v", got)
	}

	// Passwords never leave the server, in any form.
	r, _ := http.NewRequest("POST", e.srv.URL+"/", strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", "DescribeMigrateJobs")
	r.Header.Set("X-TC-Version", "2018-03-30")
	r.Header.Set("X-TC-Region", testRegion)
	signTC3(r, []byte("{}"), testID, testKey, time.Now())
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		raw.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	for _, leak := range []string{"pa$$word", "Password"} {
		if strings.Contains(raw.String(), leak) {
			t.Errorf("DescribeMigrateJobs shows %q", leak)
		}
	}
	// Unset times and an empty whole-instance selection look like the cloud's.
	if !strings.Contains(raw.String(), `"StartTime":"0000-00-00 00:00:00"`) || !strings.Contains(raw.String(), `"ExternParams":"[]"`) {
		t.Errorf("zero values: %s", raw.String()[:400])
	}
}

func TestTagsAndTagFilters(t *testing.T) {
	e := newEnv(t)
	create := func(name, db, tags string) string {
		body := fmt.Sprintf(`{"JobName":%q,"MigrateOption":{"RunMode":1,"MigrateType":2,"MigrateObject":2},
			"SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"10.0.0.1","Port":3306,"User":"u","Password":"p"},
			"DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"10.0.0.2","Port":3306,"User":"u","Password":"p"},
			"DatabaseInfo":"[{\"Database\":\"%s\"}]","Tags":%s}`, name, db, tags)
		resp := e.rawTC3("CreateMigrateJob", body, nil)
		if errCode(resp) != "" {
			t.Fatalf("%s %s", errCode(resp), errMessage(resp))
		}
		return resp["JobId"].(string)
	}
	prod := create("a", "a", `[{"TagKey":"env","TagValue":"prod"},{"TagKey":"team","TagValue":"pay"}]`)
	test := create("b", "b", `[{"TagKey":"env","TagValue":"test"}]`)
	create("c", "c", `[]`)
	ids := func(filter string) string {
		resp := e.rawTC3("DescribeMigrateJobs", `{"TagFilters":`+filter+`,"Order":"JobName","OrderSeq":"ASC"}`, nil)
		if errCode(resp) != "" {
			t.Fatalf("%s %s", errCode(resp), errMessage(resp))
		}
		var out []string
		for _, j := range resp["JobList"].([]any) {
			out = append(out, j.(map[string]any)["JobId"].(string))
		}
		return strings.Join(out, ",")
	}
	if got := ids(`[{"TagKey":"env","TagValue":["prod"]}]`); got != prod {
		t.Errorf("env=prod: %s", got)
	}
	if got := ids(`[{"TagKey":"env"}]`); got != prod+","+test {
		t.Errorf("env=any: %s", got)
	}
	if got := ids(`[{"TagKey":"env","TagValue":["test","prod"]},{"TagKey":"team","TagValue":["pay"]}]`); got != prod {
		t.Errorf("two filters: %s", got)
	}
	resp := e.rawTC3("DescribeMigrateJobs", `{"JobId":"`+prod+`"}`, nil)
	tags := resp["JobList"].([]any)[0].(map[string]any)["Tags"]
	if mustJSON(tags) != `[{"TagKey":"env","TagValue":"prod"},{"TagKey":"team","TagValue":"pay"}]` {
		t.Errorf("Tags %s", mustJSON(tags))
	}
}

func TestMaxUnusedJobs(t *testing.T) {
	e := newEnv(t, func(c *app.Config) { c.MaxUnusedJobs = 2 })
	for i := 0; i < 2; i++ {
		req := newJobRequest("unused")
		req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":"u%d"}]`, i))
		e.create(req)
	}
	req := newJobRequest("one too many")
	req.DatabaseInfo = sp(`[{"Database":"u9"}]`)
	_, err := e.client().CreateMigrateJob(req)
	wantCode(t, err, "LimitExceeded.MaxUnusedJobs", "at most 2")
}
