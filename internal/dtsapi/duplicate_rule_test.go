package dtsapi_test

import (
	"fmt"
	"strings"
	"testing"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"
)

// checkItem returns the named item of a job's last check.
func checkItem(t *testing.T, e *env, id, name string) map[string]any {
	t.Helper()
	for _, it := range checkResult(t, e, id)["CheckItems"].([]any) {
		if item := it.(map[string]any); item["Name"] == name {
			return item
		}
	}
	t.Fatalf("job %s has no check item %s", id, name)
	return nil
}

// The duplicate rule (internal/jobs/duplicate.go): jobs writing overlapping
// objects into one target are refused only when they would run together.
// Creating and modifying never conflict; the check fails (DuplicateJobCheck)
// while an overlapping job runs and warns while one waits unstarted; the
// start is refused while one runs.
func TestDuplicateJob(t *testing.T) {
	e := newEnv(t)
	first := e.create(newJobRequest("first"))

	t.Run("an unstarted job blocks neither create nor modify", func(t *testing.T) {
		second := e.create(newJobRequest("corrected"))
		req := newJobRequest("elsewhere")
		req.DatabaseInfo = sp(`[{"Database":"blog"}]`)
		third := e.create(req)
		if err := modify(e, third, func(m *dts.ModifyMigrateJobRequest) { m.DatabaseInfo = sp(`[{"Database":"shop"}]`) }); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{second, third} {
			if err := e.jobCall("Delete", id); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("a failed check blocks nothing", func(t *testing.T) {
		bad := newJobRequest("wrong user")
		bad.SrcInfo.User = sp("denied")
		failed := e.create(bad)
		e.check(failed)
		e.waitStatus(failed, 5)
		fixed := e.create(newJobRequest("fixed"))
		e.check(fixed)
		e.waitStatus(fixed, 4)
		// Unstarted overlapping jobs are a warning, not a failure.
		if it := checkItem(t, e, fixed, "DuplicateJobCheck"); it["Result"] != "warning" || !strings.Contains(it["Message"].(string), "only one of them can run") {
			t.Errorf("DuplicateJobCheck = %v, want a warning", it)
		}
		for _, id := range []string{failed, fixed} {
			if err := e.jobCall("Delete", id); err != nil {
				t.Fatal(err)
			}
		}
	})

	e.check(first)
	e.waitStatus(first, 4)
	// With no other job the item is not shown.
	if items := fmt.Sprint(checkResult(t, e, first)["CheckItems"]); strings.Contains(items, "DuplicateJobCheck") {
		t.Errorf("DuplicateJobCheck shown with no other job: %s", items)
	}
	other := e.create(newJobRequest("same objects"))
	e.check(other)
	e.waitStatus(other, 4)
	if err := e.jobCall("Start", first); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(first, 7)

	tests := []struct {
		name string
		info string
		dup  bool
	}{
		{"same table", `[{"Database":"shop","Table":["users"]}]`, true},
		{"whole database over a table", `[{"Database":"shop"}]`, true},
		{"other table", `[{"Database":"shop","Table":["items"]}]`, false},
		{"other database", `[{"Database":"blog"}]`, false},
	}
	for _, tt := range tests {
		t.Run("check while the first runs: "+tt.name, func(t *testing.T) {
			req := newJobRequest(tt.name)
			req.DatabaseInfo = sp(tt.info)
			id := e.create(req)
			e.check(id)
			if !tt.dup {
				e.waitStatus(id, 4)
			} else {
				e.waitStatus(id, 5)
				it := checkItem(t, e, id, "DuplicateJobCheck")
				msg := it["Message"].(string)
				if it["Result"] != "fail" || !strings.Contains(msg, first) || !strings.Contains(msg, "10.0.0.2:3306") || it["Advice"] == "" {
					t.Errorf("DuplicateJobCheck = %v", it)
				}
			}
			if err := e.jobCall("Delete", id); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("a start while the first runs is refused", func(t *testing.T) {
		// other passed its check before first started.
		wantCode(t, e.jobCall("Start", other), "InternalError.DuplicateJob", first, "10.0.0.2:3306", "7 (running)")
		if got := *e.describe(other).Status; got != 4 {
			t.Errorf("a refused start moved the job to %d", got)
		}
	})

	t.Run("a finished job holds nothing", func(t *testing.T) {
		e.engine.Finish(first, nil)
		e.waitStatus(first, 9)
		if err := e.jobCall("Start", other); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(other, 7)
		e.engine.Finish(other, nil)
		e.waitStatus(other, 9)
	})
}
