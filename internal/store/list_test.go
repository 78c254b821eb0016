package store

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/jobs"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "opendts.db"), testBox(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reference is ListJobs done the slow, obvious way, in memory.
func reference(all []*jobs.Job, q jobs.Query) ([]string, int) {
	var out []*jobs.Job
	for _, j := range all {
		if q.JobID != "" && j.ID != q.JobID || q.JobName != "" && !strings.Contains(j.Name, q.JobName) {
			continue
		}
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, j.Status) {
			continue
		}
		ok := true
		for _, f := range q.Tags {
			if !slices.ContainsFunc(j.Tags, func(t jobs.Tag) bool {
				return t.Key == f.Key && (len(f.Values) == 0 || slices.Contains(f.Values, t.Value))
			}) {
				ok = false
			}
		}
		if ok {
			out = append(out, j)
		}
	}
	key := func(j *jobs.Job) any {
		switch q.Order {
		case "JobId":
			return j.ID
		case "Status":
			return int(j.Status)
		case "JobName":
			return j.Name
		case "MigrateType":
			return j.Option.MigrateType
		case "RunMode":
			return j.Option.RunMode
		}
		return j.CreateTime.UnixNano()
	}
	slices.SortFunc(out, func(a, b *jobs.Job) int {
		var c int
		switch ka := key(a).(type) {
		case string:
			c = cmp.Compare(ka, key(b).(string))
		case int:
			c = cmp.Compare(ka, key(b).(int))
		case int64:
			c = cmp.Compare(ka, key(b).(int64))
		}
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		if q.Desc {
			c = -c
		}
		return c
	})
	total := len(out)
	out = out[min(q.Offset, len(out)):]
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	ids := []string{}
	for _, j := range out {
		ids = append(ids, j.ID)
	}
	return ids, total
}

func TestListJobsMatchesReference(t *testing.T) {
	s := openTest(t)
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []*jobs.Job
	for i := range 300 {
		j := &jobs.Job{
			ID: fmt.Sprintf("dts-%08d", r.IntN(1e8)), Name: fmt.Sprintf("job-%d-%s", i%37, []string{"a", "b", "c"}[i%3]),
			Status:     []jobs.Status{1, 3, 4, 5, 7, 8, 9, 10}[r.IntN(8)],
			Option:     jobs.MigrateOption{MigrateType: 1 + r.IntN(3), RunMode: 1 + r.IntN(2)},
			CreateTime: base.Add(time.Duration(r.IntN(50)) * time.Hour), // ties: job_id decides
			Src:        jobs.SrcInfo{Password: "src-pw"}, Dst: jobs.DstInfo{Ip: "10.0.0.1", Port: 3306, Password: "dst-pw"},
			DatabaseInfo: "[]", SrcDatabaseType: "mysql",
		}
		if r.IntN(2) == 0 {
			j.Tags = append(j.Tags, jobs.Tag{Key: "env", Value: []string{"prod", "dev"}[r.IntN(2)]})
		}
		if r.IntN(3) == 0 {
			j.Tags = append(j.Tags, jobs.Tag{Key: "team", Value: "t" + fmt.Sprint(r.IntN(4))})
		}
		if i%40 == 0 { // rarer than one in 20: paged by sorting its matches
			j.Tags = append(j.Tags, jobs.Tag{Key: "rare", Value: "r"})
		}
		if err := s.CreateJob(t.Context(), j); errors.Is(err, jobs.ErrExists) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		all = append(all, j)
	}
	queries := []jobs.Query{
		{Limit: 20, Desc: true}, {Limit: 20, Offset: 280, Desc: true}, {Limit: 100, Offset: 1000},
		{JobID: all[17].ID, Limit: 20}, {JobID: "dts-missing", Limit: 20},
		{JobName: "job-3-", Limit: 20, Desc: true}, {JobName: "-b", Order: "JobName", Limit: 50},
		{Statuses: []jobs.Status{7, 8}, Order: "Status", Limit: 20},
		{Tags: []jobs.TagFilter{{Key: "env", Values: []string{"prod"}}}, Limit: 20, Desc: true},
		{Tags: []jobs.TagFilter{{Key: "env"}, {Key: "team", Values: []string{"t1", "t2"}}}, Order: "JobId", Limit: 30, Offset: 3},
		{Tags: []jobs.TagFilter{{Key: "rare"}}, Order: "JobName", Limit: 5, Offset: 2},
		{Tags: []jobs.TagFilter{{Key: "rare", Values: []string{"r", "x"}}}, Desc: true, Limit: 20},
		{Tags: []jobs.TagFilter{{Key: "team", Values: []string{"t0"}}}, Order: "Status", Desc: true, Limit: 10, Offset: 5},
		{JobName: `a "quoted' name`, Limit: 20}, {JobName: "-b", Offset: 500, Limit: 20},
		{JobName: "job-1", Tags: []jobs.TagFilter{{Key: "team"}}, Order: "MigrateType", Desc: true, Limit: 7},
	}
	for _, order := range []string{"", "JobId", "Status", "JobName", "MigrateType", "RunMode", "CreateTime"} {
		for _, desc := range []bool{false, true} {
			queries = append(queries, jobs.Query{Order: order, Desc: desc, Limit: 25, Offset: 40}, jobs.Query{Order: order, Desc: desc})
		}
	}
	want := map[jobs.Status]int{}
	for _, j := range all {
		want[j.Status]++
	}
	counts, err := s.CountByStatus(t.Context())
	if err != nil || !maps.Equal(counts, want) {
		t.Errorf("CountByStatus = %v (%v), want %v", counts, err, want)
	}
	counts, err = s.CountByStatus(t.Context(), 1, 4, 6)
	if err != nil || counts[1] != want[1] || counts[4] != want[4] || len(counts) != 2 {
		t.Errorf("CountByStatus(1, 4, 6) = %v (%v), want 1: %d, 4: %d", counts, err, want[1], want[4])
	}
	for i, q := range queries {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			list, total, err := s.ListJobs(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, j := range list {
				ids = append(ids, j.ID)
				if j.Src.Password != "" || j.Dst.Password != "" {
					t.Errorf("ListJobs returned passwords of %s", j.ID)
				}
			}
			wantIDs, wantTotal := reference(all, q)
			if total != wantTotal || !slices.Equal(ids, wantIDs) {
				t.Errorf("query %+v:\n got %d %v\nwant %d %v", q, total, ids, wantTotal, wantIDs)
			}
		})
	}
}

func TestCreateTakenID(t *testing.T) {
	s := openTest(t)
	j := &jobs.Job{ID: "dts-same0000", Status: 1, DatabaseInfo: "[]"}
	if err := s.CreateJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateJob(t.Context(), j); !errors.Is(err, jobs.ErrExists) {
		t.Errorf("second create of the same id: %v", err)
	}
}

func TestSaveProgressIsNarrowAndOnlyWhileMigrating(t *testing.T) {
	s := openTest(t)
	j := &jobs.Job{ID: "dts-prog0000", Status: jobs.StatusRunning, DatabaseInfo: "[]", Dst: jobs.DstInfo{Password: "pw"},
		Detail: jobs.Detail{StepAll: 3, Steps: []jobs.Step{{No: 1, Name: "copy"}}}}
	if err := s.CreateJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	var docBefore string
	s.r.QueryRow(`SELECT doc FROM jobs WHERE job_id = ?`, j.ID).Scan(&docBefore)
	if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{HasProgress: true, Overall: 55, Current: 80}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{HasLag: true, LagSeconds: 4, LagMegabyte: 9}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetJob(t.Context(), j.ID)
	if d := got.Detail; d.Progress != 55 || d.CurrentStepProgress != 80 || d.SecondsBehindMaster != 4 || d.MasterSlaveDistance != 9 || d.StepAll != 3 || got.Dst.Password != "pw" {
		t.Errorf("after progress reports: %+v", got)
	}
	var docAfter string
	s.r.QueryRow(`SELECT doc FROM jobs WHERE job_id = ?`, j.ID).Scan(&docAfter)
	if docAfter != docBefore {
		t.Error("SaveProgress rewrote the job's document")
	}
	got.Status = jobs.StatusFailed
	if err := s.UpdateJob(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{HasProgress: true, Overall: 99}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetJob(t.Context(), j.ID); got.Detail.Progress != 55 {
		t.Errorf("a late report moved a failed job's progress to %d", got.Detail.Progress)
	}
}

// TestConcurrentWritersAndReaders: writers and readers on many goroutines
// never see "database is locked" and lose no write.
func TestConcurrentWritersAndReaders(t *testing.T) {
	s := openTest(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 10*n)
	for i := range n {
		wg.Go(func() {
			j := &jobs.Job{ID: fmt.Sprintf("dts-c%07d", i), Status: jobs.StatusRunning, DatabaseInfo: "[]", Tags: []jobs.Tag{{Key: "k", Value: "v"}}}
			if err := s.CreateJob(t.Context(), j); err != nil {
				errs <- err
				return
			}
			for k := range 5 {
				if err := s.SaveProgress(t.Context(), j.ID, jobs.Progress{HasProgress: true, Overall: k}); err != nil {
					errs <- err
				}
				if _, _, err := s.ListJobs(t.Context(), jobs.Query{Limit: 20, Tags: []jobs.TagFilter{{Key: "k"}}}); err != nil {
					errs <- err
				}
				got, err := s.GetJob(t.Context(), j.ID)
				if err != nil {
					errs <- err
					continue
				}
				got.Name = fmt.Sprint(k)
				if err := s.UpdateJob(t.Context(), got); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, total, err := s.ListJobs(t.Context(), jobs.Query{JobName: "4"})
	if err != nil || total != n {
		t.Fatalf("%d jobs carry the last name (%v), want %d", total, err, n)
	}
	for _, j := range list {
		if j.Detail.Progress != 4 {
			t.Errorf("job %s progress %d, want 4", j.ID, j.Detail.Progress)
		}
	}
}

// A status change reads the job with its passwords still sealed and writes
// them back as they were.
func TestGetJobStateKeepsPasswordsSealed(t *testing.T) {
	s := openTest(t)
	j := &jobs.Job{ID: "dts-state000", Status: jobs.StatusCreated, DatabaseInfo: "[]",
		Src: jobs.SrcInfo{Password: "src-secret"}, Dst: jobs.DstInfo{Password: "dst-secret"},
		SrcInfoMulti: []jobs.SrcInfo{{Password: "node-secret"}}}
	if err := s.CreateJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	st, err := s.GetJobState(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Src.Password != "" || st.Dst.Password != "" || st.SrcInfoMulti[0].Password != "" || st.Sealed == "" {
		t.Fatalf("GetJobState unsealed the passwords or lost them: %+v", st)
	}
	st.Status = jobs.StatusChecking
	if err := s.UpdateJob(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusChecking || got.Src.Password != "src-secret" || got.Dst.Password != "dst-secret" || got.SrcInfoMulti[0].Password != "node-secret" || got.Sealed != "" {
		t.Errorf("after a status change: %+v", got)
	}
	// A job read with its passwords stores the ones it carries.
	got.Dst.Password = "new-secret"
	if err := s.UpdateJob(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.GetJob(t.Context(), j.ID); again.Dst.Password != "new-secret" || again.Src.Password != "src-secret" {
		t.Errorf("after a password change: %+v", again)
	}
}
