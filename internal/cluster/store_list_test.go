package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/store"
	"github.com/opendts/opendts/internal/testetcd"
)

// randomJob is a job of many shapes: every status, names that share
// parts, ties on every order column, tags, targets named by address (in
// any case) or instance, selections of databases, whole instances and
// selections that do not parse.
func randomJob(r *rand.Rand, i int) *jobs.Job {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	statuses := []jobs.Status{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	names := []string{"orders", "Orders", "orders-eu", "billing", "bill", "日本-sync", `a "quoted' name`, ""}
	j := &jobs.Job{
		ID:              fmt.Sprintf("dts-%08x", r.Uint32()),
		Name:            fmt.Sprintf("%s-%d", names[r.IntN(len(names))], i%7),
		Status:          statuses[r.IntN(len(statuses))],
		Option:          jobs.MigrateOption{MigrateType: 1 + r.IntN(3), RunMode: 1 + r.IntN(2)},
		CreateTime:      base.Add(time.Duration(r.IntN(40)) * time.Hour), // ties: the id decides
		SrcDatabaseType: "mysql",
		Src:             jobs.SrcInfo{Ip: "10.0.0.1", Port: 3306, Password: "src-pw"},
		Dst:             jobs.DstInfo{Ip: []string{"db1.example", "DB1.example", "db2.example"}[r.IntN(3)], Port: 3306 + r.IntN(2), Password: "dst-pw"},
		DatabaseInfo:    "[]",
	}
	if r.IntN(4) == 0 {
		j.DstAccessType, j.Dst.InstanceId = "cdb", fmt.Sprintf("cdb-%d", r.IntN(3))
	}
	switch r.IntN(4) {
	case 0:
		j.DatabaseInfo = fmt.Sprintf(`[{"Database":"app%d"}]`, r.IntN(4))
	case 1:
		j.DatabaseInfo = fmt.Sprintf(`[{"Database":"app%d","Table":["t"]},{"Database":"app%d"}]`, r.IntN(4), r.IntN(4))
	case 2:
		j.DatabaseInfo = `[{"Table":["no database"]}]` // does not parse
	}
	if r.IntN(2) == 0 {
		j.Tags = append(j.Tags, jobs.Tag{Key: "env", Value: []string{"prod", "dev", "Prod"}[r.IntN(3)]})
	}
	if r.IntN(3) == 0 {
		j.Tags = append(j.Tags, jobs.Tag{Key: "team", Value: fmt.Sprint("t", r.IntN(4))})
	}
	if i%40 == 0 {
		j.Tags = append(j.Tags, jobs.Tag{Key: "rare", Value: "r"})
	}
	if j.Status == jobs.StatusRunning || j.Status == jobs.StatusReadyComplete {
		j.Detail = jobs.Detail{StepAll: 5, StepNow: 3, Progress: r.IntN(100), SecondsBehindMaster: int64(r.IntN(9))}
	}
	return j
}

func listQueries(all []*jobs.Job) []jobs.Query {
	qs := []jobs.Query{
		{}, {Limit: 20}, {Limit: 20, Desc: true}, {Limit: 20, Offset: 280, Desc: true}, {Limit: 100, Offset: 10000},
		{Offset: -5, Limit: 3}, {Limit: -1, Offset: 7},
		{JobID: all[17].ID, Limit: 20}, {JobID: all[3].ID, Statuses: []jobs.Status{all[3].Status}}, {JobID: all[3].ID, Statuses: []jobs.Status{99}},
		{JobID: "dts-missing", Limit: 20},
		{JobName: "orders", Limit: 20, Desc: true}, {JobName: "Orders"}, {JobName: "-3", Order: "JobName", Limit: 50},
		{JobName: `"quoted'`, Limit: 20}, {JobName: "日本"}, {JobName: "bill", Offset: 500, Limit: 20}, {JobName: "nothing like it"},
		{Statuses: []jobs.Status{7, 8}, Order: "Status", Limit: 20}, {Statuses: []jobs.Status{9, 10, 1}, Order: "CreateTime", Desc: true},
		{Tags: []jobs.TagFilter{{Key: "env", Values: []string{"prod"}}}, Limit: 20, Desc: true},
		{Tags: []jobs.TagFilter{{Key: "env"}, {Key: "team", Values: []string{"t1", "t2"}}}, Order: "JobId", Limit: 30, Offset: 3},
		{Tags: []jobs.TagFilter{{Key: "rare"}}, Order: "JobName", Limit: 5, Offset: 2},
		{Tags: []jobs.TagFilter{{Key: "rare", Values: []string{"r", "x"}}}, Desc: true, Limit: 20},
		{Tags: []jobs.TagFilter{{Key: "team", Values: []string{"t0"}}}, Order: "Status", Desc: true, Limit: 10, Offset: 5},
		{Tags: []jobs.TagFilter{{Key: "nokey"}}},
		{JobName: "orders", Tags: []jobs.TagFilter{{Key: "team"}}, Statuses: []jobs.Status{1, 7, 9}, Order: "MigrateType", Desc: true, Limit: 7},
	}
	for _, order := range []string{"", "JobId", "Status", "JobName", "MigrateType", "RunMode", "CreateTime"} {
		for _, desc := range []bool{false, true} {
			qs = append(qs, jobs.Query{Order: order, Desc: desc, Limit: 25, Offset: 40}, jobs.Query{Order: order, Desc: desc},
				jobs.Query{Order: order, Desc: desc, Limit: 1, Offset: 0})
		}
	}
	return qs
}

// TestStoreListMatchesSQLite loads the same jobs into the SQLite store (the
// reference) and, through one node, into the etcd store, changes them the
// same way, and compares what another node lists, counts and finds with
// what SQLite does.
func TestStoreListMatchesSQLite(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	box := testBox(t, key1)
	a, b := openNode(t, c, prefix, box), openNode(t, c, prefix, box)
	ref, err := store.Open(filepath.Join(t.TempDir(), "opendts.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	ctx := t.Context()
	r := rand.New(rand.NewPCG(7, 11))
	var all []*jobs.Job
	for i := range 300 {
		j := randomJob(r, i)
		errRef, errEtcd := ref.CreateJob(ctx, j), a.CreateJob(ctx, j)
		if errors.Is(errRef, jobs.ErrExists) && errors.Is(errEtcd, jobs.ErrExists) {
			continue
		}
		if errRef != nil || errEtcd != nil {
			t.Fatalf("create: sqlite %v, etcd %v", errRef, errEtcd)
		}
		all = append(all, j)
	}
	compareStores(t, ref, b, all)

	// The same changes on both: status moves (with and without revision),
	// progress, deletions.
	for i, j := range all {
		switch i % 9 {
		case 0, 1:
			for _, s := range []jobs.Store{ref, a} {
				cur, err := s.GetJobState(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				cur.Status, cur.Name = jobs.Status([]int{1, 7, 8, 9, 10, 12}[i%6]), cur.Name+"-x"
				cur.Detail.Progress = 0
				if err := s.UpdateJob(ctx, cur); err != nil {
					t.Fatal(err)
				}
			}
		case 2:
			p := jobs.Progress{HasProgress: true, Overall: i % 100, Current: i % 50, HasLag: i%2 == 0, LagSeconds: int64(i), LagMegabyte: 3}
			if i%4 == 0 {
				p.Copy = &jobs.CopyProgress{RowsDone: int64(i), RowsTotal: 1000, TablesTotal: 2}
			}
			for _, s := range []jobs.Store{ref, a} {
				if err := s.SaveProgress(ctx, j.ID, p); err != nil {
					t.Fatal(err)
				}
			}
		case 3:
			for _, s := range []jobs.Store{ref, a} {
				if err := s.DeleteJob(ctx, j.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	kept := all[:0:0]
	for i, j := range all {
		if i%9 != 3 {
			kept = append(kept, j)
		}
	}
	compareStores(t, ref, b, kept)
	// And what the writing node itself sees.
	compareStores(t, ref, a, kept)
}

func compareStores(t *testing.T, ref jobs.Store, s *Store, all []*jobs.Job) {
	t.Helper()
	ctx := t.Context()
	for _, q := range listQueries(all) {
		want, wantTotal, err := ref.ListJobs(ctx, q)
		if err != nil {
			t.Fatalf("sqlite %+v: %v", q, err)
		}
		got, total, err := s.ListJobs(ctx, q)
		if err != nil {
			t.Fatalf("etcd %+v: %v", q, err)
		}
		if total != wantTotal || !sameJobs(got, want) {
			t.Errorf("ListJobs(%+v):\n etcd   %d %v\n sqlite %d %v", q, total, ids(got), wantTotal, ids(want))
		}
	}
	if _, _, err := s.ListJobs(ctx, jobs.Query{Order: "Size"}); err == nil {
		t.Error("an unknown order was accepted")
	}
	for _, only := range [][]jobs.Status{nil, {7, 8, 12}, {9}, {99}} {
		want, err1 := ref.CountByStatus(ctx, only...)
		got, err2 := s.CountByStatus(ctx, only...)
		if err1 != nil || err2 != nil || !maps.Equal(got, want) || got == nil {
			t.Errorf("CountByStatus(%v) = %v (%v), sqlite %v (%v)", only, got, err2, want, err1)
		}
	}
	finds := []struct{ targets, dbs []string }{
		{nil, nil}, {[]string{"db1.example:3306"}, nil}, {[]string{"db1.example:3306", "db2.example:3307"}, []string{"app1"}},
		{[]string{"cdb:cdb-1"}, []string{"app0", "app3"}}, {[]string{"cdb:cdb-0", "db2.example:3306"}, nil},
		{[]string{"DB1.example:3306"}, nil}, {[]string{"db1.example:3307"}, []string{"nothing"}},
	}
	for _, f := range finds {
		want, err1 := ref.WritingInto(ctx, f.targets, f.dbs)
		got, err2 := s.WritingInto(ctx, f.targets, f.dbs)
		if err1 != nil || err2 != nil || !sameJobs(got, want) {
			t.Errorf("WritingInto(%v, %v):\n etcd   %v (%v)\n sqlite %v (%v)", f.targets, f.dbs, ids(got), err2, ids(want), err1)
		}
	}
}

// sameJobs compares whole jobs; the etcd store's carry their Revision,
// which SQLite does not keep.
func sameJobs(got, want []*jobs.Job) bool {
	if len(got) != len(want) || (got == nil) != (want == nil) {
		return false
	}
	for i := range got {
		g := *got[i]
		g.Revision = 0
		if !reflect.DeepEqual(&g, want[i]) {
			return false
		}
	}
	return true
}

func ids(list []*jobs.Job) []string {
	out := []string{}
	for _, j := range list {
		out = append(out, j.ID)
	}
	return out
}

// TestStoreProgressMatchesSQLite runs one job through the progress rules
// on both stores: nothing is saved before the job migrates, a pair not
// given keeps its value, the copy's summary is kept, the revision does
// not move, and a restart's zeroed progress is not hidden by the last
// run's.
func TestStoreProgressMatchesSQLite(t *testing.T) {
	c := testetcd.Shared(t)
	box := testBox(t, key1)
	s := openNode(t, c, testetcd.Prefix(t), box)
	ref, err := store.Open(filepath.Join(t.TempDir(), "opendts.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	ctx := t.Context()
	j := sampleJob("dts-progress")
	j.Detail = jobs.Detail{StepAll: 4, StepNow: 1, Progress: 3}
	for _, st := range []jobs.Store{ref, s} {
		jj := *j
		if err := st.CreateJob(ctx, &jj); err != nil {
			t.Fatal(err)
		}
	}
	same := func(step string) *jobs.Job {
		t.Helper()
		want, err1 := ref.GetJob(ctx, j.ID)
		got, err2 := s.GetJob(ctx, j.ID)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", step, err1, err2)
		}
		rev := got.Revision
		got.Revision = 0
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: etcd %+v\nsqlite %+v", step, got.Detail, want.Detail)
		}
		list, _, err := s.ListJobs(ctx, jobs.Query{JobID: j.ID})
		wantList, _, _ := ref.ListJobs(ctx, jobs.Query{JobID: j.ID})
		if err != nil || !sameJobs(list, wantList) {
			t.Errorf("%s: listed etcd %+v\nsqlite %+v (%v)", step, list, wantList, err)
		}
		got.Revision = rev
		return got
	}
	both := func(f func(st jobs.Store) error) {
		t.Helper()
		for _, st := range []jobs.Store{ref, s} {
			if err := f(st); err != nil {
				t.Fatal(err)
			}
		}
	}
	setStatus := func(status jobs.Status, reset bool) func(jobs.Store) error {
		return func(st jobs.Store) error {
			cur, err := st.GetJobState(ctx, j.ID)
			if err != nil {
				return err
			}
			cur.Status = status
			if reset {
				cur.Detail = jobs.Detail{StepAll: 4}
			}
			return st.UpdateJob(ctx, cur)
		}
	}
	p := jobs.Progress{HasProgress: true, Overall: 40, Current: 60, HasLag: true, LagSeconds: 9, LagMegabyte: 2,
		Copy: &jobs.CopyProgress{RowsDone: 10, RowsTotal: 20, TablesTotal: 1}}
	both(func(st jobs.Store) error { return st.SaveProgress(ctx, j.ID, p) })
	if got := same("SaveProgress while created"); got.Detail.Progress != 3 || got.Detail.Copy != nil {
		t.Errorf("progress saved while created: %+v", got.Detail)
	}
	both(setStatus(jobs.StatusRunning, false))
	before := same("running").Revision
	both(func(st jobs.Store) error { return st.SaveProgress(ctx, j.ID, p) })
	got := same("SaveProgress while running")
	if got.Detail.Progress != 40 || got.Detail.SecondsBehindMaster != 9 || got.Detail.Copy == nil || got.Revision != before {
		t.Errorf("after SaveProgress: %+v, revision %d (was %d)", got.Detail, got.Revision, before)
	}
	both(func(st jobs.Store) error {
		return st.SaveProgress(ctx, j.ID, jobs.Progress{HasLag: true, LagSeconds: 1})
	})
	same("lag only")
	both(func(st jobs.Store) error {
		return st.SaveProgress(ctx, j.ID, jobs.Progress{HasProgress: true, Overall: 70, Current: 5})
	})
	same("progress only")
	both(setStatus(jobs.StatusReadyComplete, false))
	same("ready to complete keeps the progress")
	both(func(st jobs.Store) error {
		return st.SaveProgress(ctx, j.ID, jobs.Progress{HasLag: true, LagSeconds: 0, LagMegabyte: 0})
	})
	same("caught up")
	both(setStatus(jobs.StatusFailed, false))
	both(func(st jobs.Store) error { return st.SaveProgress(ctx, j.ID, p) })
	if got := same("SaveProgress after the end"); got.Detail.Progress != 70 {
		t.Errorf("progress after the end: %+v", got.Detail)
	}
	// Modified and started again: the new run starts from nothing.
	both(setStatus(jobs.StatusCreated, true))
	both(setStatus(jobs.StatusRunning, false))
	if got := same("restarted"); got.Detail.Progress != 0 || got.Detail.Copy != nil || got.Detail.SecondsBehindMaster != 0 {
		t.Errorf("the last run's progress leaked into the new one: %+v", got.Detail)
	}
	if err := s.SaveProgress(ctx, "dts-nosuchjob", p); err != nil {
		t.Errorf("SaveProgress of a missing job: %v (sqlite ignores it)", err)
	}
	both(func(st jobs.Store) error { return st.DeleteJob(ctx, j.ID) })
	for k := range rawKeys(t, s) {
		if k == s.keys.Progress(j.ID) {
			t.Error("DeleteJob left the progress key")
		}
	}
}

// TestStoreReadYourWritesAcrossNodes: what one node wrote, another lists
// at once.
func TestStoreReadYourWritesAcrossNodes(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	box := testBox(t, key1)
	a, b := openNode(t, c, prefix, box), openNode(t, c, prefix, box)
	ctx := t.Context()
	for i := range 30 {
		j := sampleJob(fmt.Sprintf("dts-ryw%05d", i))
		if err := a.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		list, total, err := b.ListJobs(ctx, jobs.Query{JobID: j.ID})
		if err != nil || total != 1 || len(list) != 1 || list[0].Revision != j.Revision {
			t.Fatalf("job %d created on a, listed on b: %v %d %v", i, ids(list), total, err)
		}
		if err := a.SaveProgress(ctx, j.ID, jobs.Progress{HasProgress: true, Overall: 1}); err != nil {
			t.Fatal(err)
		}
		st, _ := a.GetJobState(ctx, j.ID)
		st.Status = jobs.StatusRunning
		if err := a.UpdateJob(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := a.SaveProgress(ctx, j.ID, jobs.Progress{HasProgress: true, Overall: 33}); err != nil {
			t.Fatal(err)
		}
		if list, _, err := b.ListJobs(ctx, jobs.Query{JobID: j.ID}); err != nil || len(list) != 1 || list[0].Detail.Progress != 33 {
			t.Fatalf("progress saved on a, listed on b: %+v %v", list, err)
		}
		if n, err := b.CountByStatus(ctx, jobs.StatusRunning); err != nil || n[jobs.StatusRunning] != i+1 {
			t.Fatalf("count on b: %v %v, want %d running", n, err, i+1)
		}
		if i%2 == 0 {
			continue
		}
		if err := b.DeleteJob(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if _, total, err := a.ListJobs(ctx, jobs.Query{JobID: j.ID}); err != nil || total != 0 {
			t.Fatalf("job deleted on b, still listed on a: %d %v", total, err)
		}
		// A running job in its place keeps the count at one per round.
		j2 := sampleJob(fmt.Sprintf("dts-ryw%05d-r", i))
		j2.Status = jobs.StatusRunning
		if err := b.CreateJob(ctx, j2); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreRelistAfterCompaction: a node whose watch was away while the
// others wrote and etcd compacted its history finds, when it watches
// again, that the revisions it needs are gone, and lists everything anew.
func TestStoreRelistAfterCompaction(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	a, b := openNode(t, c, prefix, testBox(t, key1)), openNode(t, c, prefix, testBox(t, key1))
	ctx := t.Context()
	for i := range 5 {
		j := sampleJob(fmt.Sprintf("dts-compact%d", i))
		j.Status = jobs.StatusRunning
		if err := a.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if _, total, err := b.ListJobs(ctx, jobs.Query{}); err != nil || total != 5 {
		t.Fatalf("b lists %d jobs (%v)", total, err)
	}
	old := b.cache.revision()
	b.Close() // b's watch stops: its copy stays at old
	for i := 5; i < 8; i++ {
		if err := a.CreateJob(ctx, sampleJob(fmt.Sprintf("dts-compact%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.DeleteJob(ctx, "dts-compact0"); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveProgress(ctx, "dts-compact1", jobs.Progress{HasProgress: true, Overall: 42}); err != nil {
		t.Fatal(err)
	}
	cur, err := a.c.Get(ctx, a.keys.Changed())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Compact(ctx, cur.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// What b's watch meets: a compacted history.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if compacted, _, err := b.follow(b.c.Watch(wctx, b.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(old+1))); !compacted {
		t.Fatalf("a watch from a compacted revision: %v", err)
	}
	// b watches again, as after a network cut.
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.done, b.closed = make(chan struct{}), sync.Once{}
	go b.watch()
	want, wantTotal, err := a.ListJobs(ctx, jobs.Query{})
	if err != nil {
		t.Fatal(err)
	}
	got, total, err := b.ListJobs(ctx, jobs.Query{})
	if err != nil || total != 7 || total != wantTotal || !reflect.DeepEqual(got, want) {
		t.Errorf("b after the compaction: %v %d (%v), a: %v %d", ids(got), total, err, ids(want), wantTotal)
	}
	if got, _, _ := b.ListJobs(ctx, jobs.Query{JobID: "dts-compact1"}); len(got) != 1 || got[0].Detail.Progress != 42 {
		t.Errorf("the progress written while b was away: %+v", got)
	}
}

func TestSmallestMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := 1 + r.IntN(300)
		list := make([]*entry, n)
		for i := range list {
			list[i] = &entry{id: fmt.Sprintf("%05d", r.IntN(100000)), created: int64(r.IntN(20))}
		}
		order := func(a, b *entry) int {
			if a.created != b.created {
				return int(a.created - b.created)
			}
			return strings.Compare(a.id, b.id)
		}
		k := 1 + r.IntN(n)
		want := slices.Clone(list)
		slices.SortStableFunc(want, order)
		got := smallest(slices.Clone(list), k, order)
		for i := range k {
			if order(got[i], want[i]) != 0 {
				t.Fatalf("n %d k %d: position %d differs", n, k, i)
			}
		}
	}
}

// TestStoreSaveProgressStaleCopy: SaveProgress starts from the node's copy
// of the jobs, which may be behind; the write's compares must catch that
// both ways. The copy of node b is frozen by closing its watch.
func TestStoreSaveProgressStaleCopy(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	box := testBox(t, key1)
	a, b := openNode(t, c, prefix, box), openNode(t, c, prefix, box)
	ctx := t.Context()
	j := sampleJob("dts-stale001")
	j.Status = jobs.StatusRunning
	if err := a.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.ListJobs(ctx, jobs.Query{JobID: j.ID}); err != nil { // b's copy has it running
		t.Fatal(err)
	}
	b.Close()
	setStatus := func(st jobs.Status) {
		t.Helper()
		cur, err := a.GetJobState(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		cur.Status = st
		if err := a.UpdateJob(ctx, cur); err != nil {
			t.Fatal(err)
		}
	}
	// Stopped meanwhile: b's copy still says running, the write must not take.
	setStatus(jobs.StatusStopping)
	if err := b.SaveProgress(ctx, j.ID, jobs.Progress{HasProgress: true, Overall: 55}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetJobState(ctx, j.ID); got.Detail.Progress != 0 {
		t.Errorf("progress saved on a stopping job through a stale copy: %d", got.Detail.Progress)
	}
	// Running again at a newer revision than b's copy knows: it must take.
	setStatus(jobs.StatusRunning)
	if err := b.SaveProgress(ctx, j.ID, jobs.Progress{HasProgress: true, Overall: 66}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetJobState(ctx, j.ID); got.Detail.Progress != 66 {
		t.Errorf("progress through a stale copy of a running job: %d, want 66", got.Detail.Progress)
	}
	// A job b's copy never had.
	j2 := sampleJob("dts-stale002")
	j2.Status = jobs.StatusReadyComplete
	if err := a.CreateJob(ctx, j2); err != nil {
		t.Fatal(err)
	}
	if err := b.SaveProgress(ctx, j2.ID, jobs.Progress{HasLag: true, LagSeconds: 4}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetJobState(ctx, j2.ID); got.Detail.SecondsBehindMaster != 4 {
		t.Errorf("lag of a job the copy did not have: %d, want 4", got.Detail.SecondsBehindMaster)
	}
}
