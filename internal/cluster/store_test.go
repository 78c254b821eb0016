package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
	"github.com/opendts/opendts/internal/testetcd"
)

func TestMain(m *testing.M) { testetcd.Main(m) }

// openNode is what one opendts node of a test has: its own client and
// store on prefix.
func openNode(t testing.TB, c *testetcd.Cluster, prefix string, box *secret.Box, opts ...StoreOption) *Store {
	t.Helper()
	cl, err := Connect(context.Background(), EtcdConfig{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	opts = append([]StoreOption{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	s, err := OpenStore(context.Background(), cl, NewKeys(prefix), box, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testBox(t testing.TB, hexKey string) *secret.Box {
	t.Helper()
	key, err := secret.ParseKey(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	key1 = "1111111111111111111111111111111111111111111111111111111111111111"
	key2 = "2222222222222222222222222222222222222222222222222222222222222222"
)

func sampleJob(id string) *jobs.Job {
	return &jobs.Job{ID: id, Name: "n-" + id, Status: jobs.StatusCreated, CreateTime: time.Now().UTC().Truncate(time.Microsecond),
		SrcDatabaseType: "mysql", DatabaseInfo: "[]",
		Src:          jobs.SrcInfo{Ip: "10.0.0.1", Port: 3306, User: "u", Password: "source-hunter2"},
		Dst:          jobs.DstInfo{Ip: "10.0.0.2", Port: 3306, User: "u", Password: "target-hunter2"},
		SrcInfoMulti: []jobs.SrcInfo{{Ip: "10.0.0.3", Password: "node-hunter2"}},
		Tags:         []jobs.Tag{{Key: "env", Value: "prod"}},
	}
}

// rawKeys reads every key under prefix as etcd holds it.
func rawKeys(t *testing.T, s *Store) map[string]string {
	t.Helper()
	resp, err := s.c.Get(t.Context(), s.keys.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

func TestStoreCRUDAndSealedPasswords(t *testing.T) {
	c := testetcd.Shared(t)
	s := openNode(t, c, testetcd.Prefix(t), testBox(t, key1))
	ctx := t.Context()
	j := sampleJob("dts-crud0001")
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j.Revision == 0 {
		t.Error("CreateJob left Revision 0")
	}
	if err := s.CreateJob(ctx, sampleJob(j.ID)); !errors.Is(err, jobs.ErrExists) {
		t.Errorf("second CreateJob: %v, want ErrExists", err)
	}
	got, err := s.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Src.Password != "source-hunter2" || got.Dst.Password != "target-hunter2" || got.SrcInfoMulti[0].Password != "node-hunter2" {
		t.Errorf("passwords did not round-trip: %+v", got)
	}
	if got.Revision != j.Revision || got.Sealed != "" || got.Name != j.Name || !got.CreateTime.Equal(j.CreateTime) {
		t.Errorf("GetJob = revision %d sealed %q name %q, want revision %d", got.Revision, got.Sealed, got.Name, j.Revision)
	}
	for k, v := range rawKeys(t, s) {
		if strings.Contains(v, "hunter2") || strings.Contains(k, "hunter2") {
			t.Errorf("etcd key %s holds a password in plain text", k)
		}
	}
	raw := rawKeys(t, s)
	if !strings.Contains(raw[s.keys.Job(j.ID)], "10.0.0.1") || raw[s.keys.Secret(j.ID)] == "" {
		t.Fatalf("the job or its secrets are not where keys.go says: %v", raw)
	}
	// The secrets are the SQLite store's JSON, sealed.
	if plain, err := s.box.Open(raw[s.keys.Secret(j.ID)]); err != nil || !strings.Contains(plain, `"Src":"source-hunter2"`) {
		t.Errorf("secrets do not open to the SQLite store's JSON (%v)", err)
	}

	// GetJobState keeps them sealed; UpdateJob stores the sealed form back.
	st, err := s.GetJobState(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sealed == "" || st.Src.Password != "" || st.Dst.Password != "" || st.Revision != j.Revision {
		t.Fatalf("GetJobState: sealed %q, passwords %q %q, revision %d", st.Sealed, st.Src.Password, st.Dst.Password, st.Revision)
	}
	st.Status = jobs.StatusChecking
	before := st.Revision
	if err := s.UpdateJob(ctx, st); err != nil {
		t.Fatal(err)
	}
	if st.Revision <= before {
		t.Errorf("UpdateJob left revision %d (was %d)", st.Revision, before)
	}
	got, err = s.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != jobs.StatusChecking || got.Src.Password != "source-hunter2" || got.SrcInfoMulti[0].Password != "node-hunter2" || got.Revision != st.Revision {
		t.Errorf("after UpdateJob of the sealed state: %+v", got)
	}
	// A job read with its passwords is sealed again on update (new ones).
	got.Dst.Password = "new-hunter2"
	if err := s.UpdateJob(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.GetJob(ctx, j.ID); again == nil || again.Dst.Password != "new-hunter2" {
		t.Errorf("new password not stored: %+v", again)
	}
	for k, v := range rawKeys(t, s) {
		if strings.Contains(v, "hunter2") {
			t.Errorf("etcd key %s holds a password in plain text", k)
		}
	}

	// A listed job is the caller's to mark (the service sets Node): the
	// next list is not changed by it.
	list, _, err := s.ListJobs(ctx, jobs.Query{JobID: j.ID})
	if err != nil || len(list) != 1 || list[0].Src.Password != "" || list[0].Revision != got.Revision {
		t.Fatalf("listed %+v (%v)", list, err)
	}
	list[0].Node, list[0].Name = "node-a", "changed by the caller"
	if again, _, _ := s.ListJobs(ctx, jobs.Query{JobID: j.ID}); again[0].Node != "" || again[0].Name != got.Name {
		t.Errorf("a caller's change to a listed job reached the next list: %q %q", again[0].Node, again[0].Name)
	}

	if err := s.DeleteJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	for k := range rawKeys(t, s) {
		if strings.HasSuffix(k, j.ID) {
			t.Errorf("DeleteJob left %s", k)
		}
	}
	if _, err := s.GetJob(ctx, j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("GetJob after delete: %v", err)
	}
	if _, err := s.GetJobState(ctx, j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("GetJobState after delete: %v", err)
	}
	if err := s.DeleteJob(ctx, j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("second DeleteJob: %v", err)
	}
	if err := s.UpdateJob(ctx, got); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("UpdateJob of a deleted job: %v", err)
	}
	got.Revision = 0
	if err := s.UpdateJob(ctx, got); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("UpdateJob (revision 0) of a deleted job: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
}

// TestStoreConflict: two nodes read the same job; the second to write
// gets ErrConflict, and a read-modify-write loop that retries on it loses
// no update however the nodes' writes interleave.
func TestStoreConflict(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	a, b := openNode(t, c, prefix, testBox(t, key1)), openNode(t, c, prefix, testBox(t, key1))
	ctx := t.Context()
	j := sampleJob("dts-conflict")
	if err := a.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	ja, _ := a.GetJobState(ctx, j.ID)
	jb, err := b.GetJobState(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	ja.Name = "from a"
	if err := a.UpdateJob(ctx, ja); err != nil {
		t.Fatal(err)
	}
	jb.Name = "from b"
	stale := jb.Revision
	if err := b.UpdateJob(ctx, jb); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("second writer: %v, want ErrConflict", err)
	}
	if jb.Revision != stale {
		t.Error("a refused UpdateJob changed Revision")
	}
	if got, _ := b.GetJobState(ctx, j.ID); got.Name != "from a" {
		t.Errorf("name %q after the refused write", got.Name)
	}
	// Revision 0 asks for no check.
	jb.Revision = 0
	if err := b.UpdateJob(ctx, jb); err != nil {
		t.Errorf("UpdateJob with revision 0: %v", err)
	}

	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range each {
				for {
					cur, err := s.GetJobState(ctx, j.ID)
					if err != nil {
						errs <- err
						return
					}
					cur.Detail.StepAll++
					err = s.UpdateJob(ctx, cur)
					if err == nil {
						break
					}
					if !errors.Is(err, jobs.ErrConflict) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := a.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Detail.StepAll != workers*each {
		t.Errorf("counter %d after %d increments from two nodes: an update was lost", got.Detail.StepAll, workers*each)
	}
	if got.Src.Password != "source-hunter2" {
		t.Error("the passwords did not survive the state writes")
	}
}

// claimJob takes the job's claim key under a fresh lease, as the node
// registry does, and returns the claim (its epoch is the key's
// CreateRevision) and the lease.
func claimJob(t *testing.T, s *Store, id, node string) (jobs.Claim, clientv3.LeaseID) {
	t.Helper()
	lease, err := s.c.Grant(t.Context(), 30)
	if err != nil {
		t.Fatal(err)
	}
	k := s.keys.Claim(id)
	resp, err := s.c.Txn(t.Context()).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, node, clientv3.WithLease(lease.ID))).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("claim %s: %v (taken: %v)", id, err, err == nil)
	}
	return jobs.Claim{Node: node, Epoch: resp.Header.Revision}, lease.ID
}

func TestStoreClaimGuard(t *testing.T) {
	c := testetcd.Shared(t)
	s := openNode(t, c, testetcd.Prefix(t), testBox(t, key1))
	ctx := t.Context()
	j := sampleJob("dts-claim001")
	j.Status = jobs.StatusRunning
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	// A claim that was never taken.
	ghost := jobs.WithClaim(ctx, jobs.Claim{Node: "a", Epoch: 1})
	if err := s.SaveProgress(ghost, j.ID, jobs.Progress{Overall: 5, HasProgress: true}); !errors.Is(err, jobs.ErrNotOwner) {
		t.Errorf("SaveProgress without a claim key: %v, want ErrNotOwner", err)
	}
	claimA, leaseA := claimJob(t, s, j.ID, "a")
	asA := jobs.WithClaim(ctx, claimA)
	st, _ := s.GetJobState(ctx, j.ID)
	st.Detail.StepNow = 2
	if err := s.UpdateJob(asA, st); err != nil {
		t.Fatalf("UpdateJob under the current claim: %v", err)
	}
	if err := s.SaveProgress(asA, j.ID, jobs.Progress{Overall: 10, HasProgress: true}); err != nil {
		t.Fatalf("SaveProgress under the current claim: %v", err)
	}
	// Node a's lease ends (it died or was cut off); node b claims the job.
	if _, err := s.c.Revoke(ctx, leaseA); err != nil {
		t.Fatal(err)
	}
	st, _ = s.GetJobState(ctx, j.ID)
	st.Detail.StepNow = 3
	if err := s.UpdateJob(asA, st); !errors.Is(err, jobs.ErrNotOwner) {
		t.Errorf("UpdateJob after the claim ended: %v, want ErrNotOwner", err)
	}
	claimB, _ := claimJob(t, s, j.ID, "b")
	if claimB.Epoch <= claimA.Epoch {
		t.Fatalf("epochs %d then %d: not growing", claimA.Epoch, claimB.Epoch)
	}
	if err := s.UpdateJob(asA, st); !errors.Is(err, jobs.ErrNotOwner) {
		t.Errorf("UpdateJob under the old claim: %v, want ErrNotOwner", err)
	}
	if err := s.SaveProgress(asA, j.ID, jobs.Progress{Overall: 99, HasProgress: true}); !errors.Is(err, jobs.ErrNotOwner) {
		t.Errorf("SaveProgress under the old claim: %v, want ErrNotOwner", err)
	}
	if err := s.DeleteJob(asA, j.ID); !errors.Is(err, jobs.ErrNotOwner) {
		t.Errorf("DeleteJob under the old claim: %v, want ErrNotOwner", err)
	}
	got, err := s.GetJobState(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Detail.StepNow != 2 || got.Detail.Progress != 10 {
		t.Errorf("a refused write took: step %d progress %d", got.Detail.StepNow, got.Detail.Progress)
	}
	// The new owner writes; so does a write without a claim (an API action).
	asB := jobs.WithClaim(ctx, claimB)
	if err := s.UpdateJob(asB, st); err != nil {
		t.Errorf("UpdateJob under the new claim: %v", err)
	}
	if err := s.SaveProgress(asB, j.ID, jobs.Progress{Overall: 20, HasProgress: true}); err != nil {
		t.Errorf("SaveProgress under the new claim: %v", err)
	}
	st, _ = s.GetJobState(ctx, j.ID)
	if err := s.UpdateJob(ctx, st); err != nil {
		t.Errorf("UpdateJob without a claim: %v", err)
	}
	// A conflict under a valid claim is a conflict, not a lost claim.
	stale := *st
	stale.Revision--
	if err := s.UpdateJob(asB, &stale); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("stale revision under the current claim: %v, want ErrConflict", err)
	}
	if err := s.DeleteJob(asB, j.ID); err != nil {
		t.Errorf("DeleteJob under the current claim: %v", err)
	}
}

// TestStoreKeyCheck: the first node's master key is the cluster's; a node
// with another key is refused with an error that says what to do and
// shows neither key.
func TestStoreKeyCheck(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	openNode(t, c, prefix, testBox(t, key1))
	cl := c.Client(t)
	_, err := OpenStore(t.Context(), cl, NewKeys(prefix), testBox(t, key2))
	if !errors.Is(err, ErrMasterKeyMismatch) {
		t.Fatalf("a node with another master key: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "OPENDTS_MASTER_KEY") || strings.Contains(msg, key1[:16]) || strings.Contains(msg, key2[:16]) {
		t.Errorf("error %q", msg)
	}
	raw, err := cl.Get(t.Context(), NewKeys(prefix).KeyCheck())
	if err != nil || len(raw.Kvs) != 1 || strings.Contains(string(raw.Kvs[0].Value), keyCheckPlain) {
		t.Fatalf("key check stored as %v (%v)", raw, err)
	}
	// The same key again is welcome, and so is another key on another prefix.
	openNode(t, c, prefix, testBox(t, key1))
	openNode(t, c, testetcd.Prefix(t), testBox(t, key2))
}

// TestStoreMajorityLost: with two of three members dead, every call fails
// within the request timeout with an error that names the cause; once
// they are back the store works again, its list included.
func TestStoreMajorityLost(t *testing.T) {
	c := testetcd.Start(t, 3)
	const timeout = time.Second
	s := openNode(t, c, "/opendts/", testBox(t, key1), WithRequestTimeout(timeout))
	ctx := t.Context()
	j := sampleJob("dts-majority")
	j.Status = jobs.StatusRunning
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	calls := map[string]func() error{
		"GetJob": func() error { _, err := s.GetJob(ctx, j.ID); return err },
		"UpdateJob": func() error {
			j2 := *j
			j2.Revision = 0
			return s.UpdateJob(ctx, &j2)
		},
		"CreateJob":     func() error { return s.CreateJob(ctx, sampleJob("dts-majority2")) },
		"DeleteJob":     func() error { return s.DeleteJob(ctx, j.ID) },
		"ListJobs":      func() error { _, _, err := s.ListJobs(ctx, jobs.Query{Limit: 20}); return err },
		"CountByStatus": func() error { _, err := s.CountByStatus(ctx); return err },
		"SaveProgress":  func() error { return s.SaveProgress(ctx, j.ID, jobs.Progress{HasProgress: true, Overall: 1}) },
		"Ping":          func() error { return s.Ping(ctx) },
	}
	// All at once, as a node's API requests would come.
	type result struct {
		err  error
		took time.Duration
	}
	results := make(map[string]result, len(calls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			start := time.Now()
			err := call()
			mu.Lock()
			results[name] = result{err, time.Since(start)}
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, r := range results {
		err, took := r.err, r.took
		if err == nil {
			t.Errorf("%s succeeded without a majority", name)
			continue
		}
		if !strings.Contains(err.Error(), "etcd cluster is unavailable") {
			t.Errorf("%s: %v: does not say the etcd cluster is unavailable", name, err)
		}
		if took > timeout+time.Second {
			t.Errorf("%s took %v to fail (timeout %v)", name, took, timeout)
		}
		t.Logf("%s failed after %v: %v", name, took.Round(time.Millisecond), err)
	}
	for _, i := range []int{1, 2} {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(wctx); err != nil {
		t.Fatal(err)
	}
	// The watch broke with the majority; the list must follow again.
	deadline := time.Now().Add(20 * time.Second)
	j3 := sampleJob("dts-majority3")
	for {
		err := s.CreateJob(ctx, j3)
		if err == nil || errors.Is(err, jobs.ErrExists) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CreateJob after the members came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		list, total, err := s.ListJobs(ctx, jobs.Query{JobID: j3.ID})
		if err == nil && total == 1 && len(list) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListJobs after the members came back: %v %d %v", list, total, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := s.GetJob(ctx, j.ID); err != nil {
		t.Errorf("the job written before the loss: %v", err)
	}
}

// TestStoreClosed: a closed store's lists fail rather than wait.
func TestStoreClosed(t *testing.T) {
	c := testetcd.Shared(t)
	s := openNode(t, c, testetcd.Prefix(t), testBox(t, key1))
	if err := s.CreateJob(t.Context(), sampleJob("dts-closed01")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Another node's write, which the closed store never sees.
	other := openNode(t, c, s.keys.Prefix, testBox(t, key1))
	if err := other.CreateJob(t.Context(), sampleJob("dts-closed02")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := s.ListJobs(t.Context(), jobs.Query{}); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("ListJobs on a closed store: %v after %v", err, time.Since(start))
	}
}

// TestStoreCopiesConverge: two nodes write the same jobs at once (creates,
// revision-checked updates, progress, deletes); afterwards both nodes'
// copies, and a third node's fresh read, list exactly the same.
func TestStoreCopiesConverge(t *testing.T) {
	c := testetcd.Shared(t)
	prefix := testetcd.Prefix(t)
	box := testBox(t, key1)
	nodes := []*Store{openNode(t, c, prefix, box), openNode(t, c, prefix, box)}
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		s := nodes[w%2]
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("dts-conv%04d", i%12) // the workers share ids
				var err error
				switch (i + w) % 5 {
				case 0:
					j := sampleJob(id)
					j.Status = jobs.StatusRunning
					if err = s.CreateJob(ctx, j); errors.Is(err, jobs.ErrExists) {
						err = nil
					}
				case 1, 2:
					var cur *jobs.Job
					if cur, err = s.GetJobState(ctx, id); err == nil {
						cur.Detail.StepNow++
						cur.Name = fmt.Sprintf("w%d-%d", w, i)
						err = s.UpdateJob(ctx, cur)
					}
				case 3:
					err = s.SaveProgress(ctx, id, jobs.Progress{HasProgress: true, Overall: i, HasLag: w%2 == 0, LagSeconds: int64(w)})
				case 4:
					err = s.DeleteJob(ctx, id)
				}
				if err != nil && !errors.Is(err, jobs.ErrNotFound) && !errors.Is(err, jobs.ErrConflict) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fresh := openNode(t, c, prefix, box)
	want, wantTotal, err := fresh.ListJobs(ctx, jobs.Query{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d jobs left", wantTotal)
	for i, s := range nodes {
		got, total, err := s.ListJobs(ctx, jobs.Query{})
		if err != nil || total != wantTotal || !reflect.DeepEqual(got, want) {
			t.Errorf("node %d lists %v (%v), a fresh node %v", i, ids(got), err, ids(want))
		}
	}
	// And every listed job is what a read of etcd gives.
	for _, l := range want {
		j, err := fresh.GetJobState(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		j.Sealed = ""
		if !reflect.DeepEqual(j, l) {
			t.Errorf("job %s listed as %+v, read as %+v", l.ID, l.Detail, j.Detail)
		}
	}
}
