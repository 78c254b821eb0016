package dtsapi_test

import (
	"os"
	"path/filepath"
	"testing"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
)

// The duplicate check finds conflicts through the store's index of targets
// as each job names them; a catalogue id and an address are matched as the
// catalogue resolves them at the time of the check, in both directions and
// after the catalogue changes.
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
	// An address first, then a catalogue id resolving to it.
	first := e.create(newJobRequest("by address"))
	_, err := e.client().CreateMigrateJob(byID("by id", "cdb-b"))
	wantCode(t, err, "InternalError.DuplicateJob", first)

	// A catalogue id first; the catalogue then moves it to another address.
	second := e.create(byID("moving", "cdb-a"))
	writeCatalogue(`[{"InstanceId":"cdb-a","Engine":"mysql","Host":"10.0.0.6","Port":3306},
		{"InstanceId":"cdb-b","Engine":"mysql","Host":"10.0.0.2","Port":3306},
		{"InstanceId":"cdb-c","Engine":"mysql","Host":"10.0.0.6","Port":3306}]`)
	at := func(name, host string) *dts.CreateMigrateJobRequest {
		req := newJobRequest(name)
		req.DstInfo.Ip = sp(host)
		return req
	}
	_, err = e.client().CreateMigrateJob(at("new address", "10.0.0.6"))
	wantCode(t, err, "InternalError.DuplicateJob", second, "10.0.0.6:3306")
	_, err = e.client().CreateMigrateJob(byID("same address, other id", "cdb-c"))
	wantCode(t, err, "InternalError.DuplicateJob", second)
	e.create(at("old address", "10.0.0.5"))
}
