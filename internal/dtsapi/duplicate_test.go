package dtsapi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
)

// The duplicate rule (a job may not run into objects another running job
// writes) finds conflicts through the store's index of targets as each job
// names them; a catalogue id and an address are matched as the catalogue
// resolves them at the time of the check, in both directions and after the
// catalogue changes. Conflicts show in the check (DuplicateJobCheck).
func TestDuplicateThroughCatalogue(t *testing.T) {
	var dir string
	e := newEnv(t, func(c *app.Config) { dir = c.DataDir })
	writeCatalogue := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "instances.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCatalogue(`[{"InstanceId":"cdb-a","Engine":"mysql","Host":"10.0.0.5","Port":3306},
		{"InstanceId":"cdb-b","Engine":"mysql","Host":"10.0.0.2","Port":3306}]`)
	byID := func(name, id string) *dts.CreateMigrateJobRequest {
		req := newJobRequest(name)
		req.DstAccessType = sp("cdb")
		req.DstInfo = &dts.DstInfo{InstanceId: sp(id), Region: sp(testRegion), User: sp("u"), Password: sp("p")}
		return req
	}
	at := func(name, host string) *dts.CreateMigrateJobRequest {
		req := newJobRequest(name)
		req.DstInfo.Ip = sp(host)
		return req
	}
	// run checks and starts a job, which then runs until the test ends.
	run := func(req *dts.CreateMigrateJobRequest) string {
		t.Helper()
		id := e.create(req)
		e.check(id)
		e.waitStatus(id, 4)
		if err := e.jobCall("Start", id); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(id, 7)
		return id
	}
	// conflicts checks a job that must be refused because of running.
	conflicts := func(req *dts.CreateMigrateJobRequest, running string, more ...string) {
		t.Helper()
		id := e.create(req)
		e.check(id)
		e.waitStatus(id, 5)
		msg := checkResult(t, e, id)["ErrorMessage"].(string)
		for _, want := range append([]string{"DuplicateJobCheck", running}, more...) {
			if !strings.Contains(msg, want) {
				t.Errorf("check of %s: %q does not say %q", id, msg, want)
			}
		}
	}
	// An address first, then a catalogue id resolving to it.
	first := run(newJobRequest("by address"))
	conflicts(byID("by id", "cdb-b"), first)

	// A catalogue id first; the catalogue then moves it to another address.
	second := run(byID("moving", "cdb-a"))
	writeCatalogue(`[{"InstanceId":"cdb-a","Engine":"mysql","Host":"10.0.0.6","Port":3306},
		{"InstanceId":"cdb-b","Engine":"mysql","Host":"10.0.0.2","Port":3306},
		{"InstanceId":"cdb-c","Engine":"mysql","Host":"10.0.0.6","Port":3306}]`)
	conflicts(at("new address", "10.0.0.6"), second, "10.0.0.6:3306")
	conflicts(byID("same address, other id", "cdb-c"), second)
	free := e.create(at("old address", "10.0.0.5"))
	e.check(free)
	e.waitStatus(free, 4)
	for _, id := range []string{first, second} {
		e.engine.Finish(id, nil)
		e.waitStatus(id, 9)
	}
}
