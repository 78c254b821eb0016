package dtsapi_test

import (
	"encoding/json"
	"testing"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"
)

// copyProgress reads the CopyProgress and TableProgress extensions of a
// job, which the SDK does not know.
type copyProgress struct {
	Status       int64
	CopyProgress struct {
		RowsDone, RowsTotal, RowsPerSecond, EtaSeconds, TablesDone, TablesTotal int64
	}
	TableProgress []struct {
		Database, Schema, Table            string
		RowsDone, RowsTotal, RowsPerSecond int64
		Status                             string
	}
}

func (e *env) copyProgress(id string) copyProgress {
	e.t.Helper()
	resp := e.rawTC3("DescribeMigrateJobs", `{"JobId":"`+id+`"}`, nil)
	if errCode(resp) != "" {
		e.t.Fatalf("%s %s", errCode(resp), errMessage(resp))
	}
	var out struct{ JobList []copyProgress }
	b, _ := json.Marshal(resp)
	if err := json.Unmarshal(b, &out); err != nil || len(out.JobList) != 1 {
		e.t.Fatalf("DescribeMigrateJobs: %v, %s", err, b)
	}
	return out.JobList[0]
}

// A running job's DescribeMigrateJobs shows its copy, job and tables; the
// figures stay, without rates, once it ended and after a restart.
func TestDescribeShowsCopyProgress(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("progress"))
	before := e.copyProgress(id)
	if before.CopyProgress.EtaSeconds != -1 || before.CopyProgress.TablesTotal != 0 || before.TableProgress == nil || len(before.TableProgress) != 0 {
		t.Errorf("a job not started: %+v", before)
	}
	e.check(id)
	e.waitStatus(id, 4)
	if err := e.jobCall("Start", id); err != nil {
		t.Fatal(err)
	}
	e.waitFor(id, func(j *dts.MigrateJobInfo) bool { return *j.Detail.StepNow == 3 })
	p := e.copyProgress(id)
	c := p.CopyProgress
	// The scripted copy moved 510 rows within the last second: the rate
	// is at least 510 rows over the 10 s window, and the ETA of the 500
	// left is under 10 s.
	if c.RowsDone != 510 || c.RowsTotal != 1010 || c.TablesDone != 1 || c.TablesTotal != 2 ||
		c.RowsPerSecond < 51 || c.EtaSeconds < 1 || c.EtaSeconds > 10 {
		t.Errorf("running job's CopyProgress: %+v", c)
	}
	if len(p.TableProgress) != 2 {
		t.Fatalf("TableProgress: %+v", p.TableProgress)
	}
	orders, users := p.TableProgress[0], p.TableProgress[1]
	if orders.Database != "shop" || orders.Table != "orders" || orders.RowsDone != 500 || orders.RowsTotal != 1000 ||
		orders.Status != "copying" || orders.RowsPerSecond < 50 {
		t.Errorf("orders: %+v", orders)
	}
	if users.Table != "users" || users.RowsDone != 10 || users.Status != "done" || users.RowsPerSecond != 0 {
		t.Errorf("users: %+v", users)
	}

	e.engine.Finish(id, nil)
	e.waitStatus(id, 9)
	p = e.copyProgress(id)
	if c := p.CopyProgress; c.RowsDone != 1010 || c.TablesDone != 2 || c.EtaSeconds != 0 || c.RowsPerSecond != 0 ||
		len(p.TableProgress) != 2 || p.TableProgress[0].Status != "done" {
		t.Errorf("succeeded job: %+v", p)
	}
	e.restart()
	if after := e.copyProgress(id); after.CopyProgress != p.CopyProgress || len(after.TableProgress) != 2 {
		t.Errorf("after a restart: %+v, before %+v", after, p)
	}
}
