package store

import (
	"testing"

	"github.com/opendts/opendts/internal/jobs"
)

// SaveProgress with a copy summary puts it into the job's document, keeps
// the rest of it, and takes only while the job is migrating.
func TestSaveProgressStoresTheCopy(t *testing.T) {
	s := openTest(t)
	j := &jobs.Job{ID: "dts-copy0000", Name: "copy", Status: jobs.StatusRunning, DatabaseInfo: "[]", Dst: jobs.DstInfo{Password: "pw"},
		Detail: jobs.Detail{StepAll: 3, Steps: []jobs.Step{{No: 1, Name: "copy"}}}}
	if err := s.CreateJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	c := &jobs.CopyProgress{RowsDone: 7, RowsTotal: 10, EtaSeconds: -1, TablesTotal: 2,
		Tables: []jobs.TableProgress{{Database: "shop", Table: "orders", RowsDone: 7, RowsTotal: 9, Status: jobs.TableCopying}}}
	if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{HasProgress: true, Overall: 40, Copy: c}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.Detail.Copy; g == nil || g.RowsDone != 7 || g.TablesTotal != 2 || len(g.Tables) != 1 || g.Tables[0] != c.Tables[0] {
		t.Errorf("stored copy: %+v", got.Detail.Copy)
	}
	if got.Detail.Progress != 40 || got.Detail.StepAll != 3 || got.Name != "copy" || got.Dst.Password != "pw" {
		t.Errorf("the rest of the job: %+v", got)
	}
	// Listed jobs (decoded from the cache) see the new document too.
	list, _, err := s.ListJobs(t.Context(), jobs.Query{JobID: j.ID})
	if err != nil || len(list) != 1 || list[0].Detail.Copy == nil || list[0].Detail.Copy.RowsDone != 7 {
		t.Fatalf("listed: %v %+v", err, list)
	}
	// A report without a summary leaves it.
	if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{HasProgress: true, Overall: 41}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetJobState(t.Context(), j.ID); got.Detail.Copy == nil || got.Detail.Copy.RowsDone != 7 {
		t.Errorf("after a report without a summary: %+v", got.Detail.Copy)
	}
	got.Status = jobs.StatusFailed
	if err := s.UpdateJob(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	late := *c
	late.RowsDone = 9
	if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{Copy: &late}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetJobState(t.Context(), j.ID); got.Detail.Copy == nil || got.Detail.Copy.RowsDone != 7 {
		t.Errorf("a late summary changed a failed job: %+v", got.Detail.Copy)
	}
}
