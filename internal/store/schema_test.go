package store

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
)

func testBox(t *testing.T) *secret.Box {
	t.Helper()
	key, _ := secret.ParseKey("1111111111111111111111111111111111111111111111111111111111111111")
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// TestOpenUnversionedStore opens a file laid out as opendts wrote it before
// schema versions (the tables made directly, rows as the old code wrote
// them) and checks that it is upgraded and fully usable.
func TestOpenUnversionedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "opendts.db")
	box := testBox(t)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(schemaV1); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	old := []*jobs.Job{
		{ID: "dts-old00001", Name: "running one", Status: jobs.StatusRunning, CreateTime: created,
			DstAccessType: "extranet", Dst: jobs.DstInfo{Ip: "DB.Example", Port: 3306, Password: "old-target-pw"},
			Src:          jobs.SrcInfo{Ip: "10.0.0.1", Password: "old-source-pw"},
			DatabaseInfo: `[{"Database":"shop"}]`, SrcDatabaseType: "mysql",
			Detail: jobs.Detail{Progress: 42, CurrentStepProgress: 7, SecondsBehindMaster: 3, MasterSlaveDistance: 2},
			Tags:   []jobs.Tag{{Key: "env", Value: "prod"}}},
		{ID: "dts-old00002", Name: "whole instance", Status: jobs.StatusCreated, CreateTime: created.Add(time.Minute),
			DstAccessType: "cdb", Dst: jobs.DstInfo{InstanceId: "cdb-1"}, DatabaseInfo: "[]", SrcDatabaseType: "mysql"},
	}
	for _, j := range old {
		doc, _ := json.Marshal(j)
		plain, _ := json.Marshal(struct{ Src, Dst string }{j.Src.Password, j.Dst.Password}) // the sealed form of schema 1
		sealed, err := box.Seal(string(plain))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO jobs (job_id, job_name, status, migrate_type, run_mode, create_time, doc, secrets) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.Name, int(j.Status), 0, 0, j.CreateTime.UnixNano(), string(doc), sealed); err != nil {
			t.Fatal(err)
		}
		for _, tag := range j.Tags {
			if _, err := db.Exec(`INSERT INTO job_tags VALUES (?, ?, ?)`, j.ID, tag.Key, tag.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()

	s, err := Open(path, box)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version int
	if err := s.r.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != schemaVersion {
		t.Fatalf("schema version %d (%v), want %d", version, err, schemaVersion)
	}
	got, err := s.GetJob(t.Context(), "dts-old00001")
	if err != nil {
		t.Fatal(err)
	}
	if got.Dst.Password != "old-target-pw" || got.Src.Password != "old-source-pw" {
		t.Errorf("passwords lost: %q %q", got.Src.Password, got.Dst.Password)
	}
	if d := got.Detail; d.Progress != 42 || d.CurrentStepProgress != 7 || d.SecondsBehindMaster != 3 || d.MasterSlaveDistance != 2 {
		t.Errorf("progress not carried into the new columns: %+v", d)
	}
	list, total, err := s.ListJobs(t.Context(), jobs.Query{Tags: []jobs.TagFilter{{Key: "env"}}, Desc: true})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != "dts-old00001" {
		t.Fatalf("tag filter on the upgraded store: %v %d %v", list, total, err)
	}
	// The duplicate-check index was built from the old documents.
	found, err := s.WritingInto(t.Context(), []string{"db.example:3306"}, []string{"shop"})
	if err != nil || len(found) != 1 || found[0].ID != "dts-old00001" {
		t.Errorf("WritingInto by address after the upgrade: %v %v", found, err)
	}
	found, err = s.WritingInto(t.Context(), []string{"cdb:cdb-1"}, []string{"anything"})
	if err != nil || len(found) != 1 || found[0].ID != "dts-old00002" {
		t.Errorf("WritingInto a whole instance after the upgrade: %v %v", found, err)
	}
	// Opening again is a no-op; a newer schema is refused.
	s.Close()
	if s, err = Open(path, box); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, box); err == nil {
		t.Error("opened a store of a newer schema")
	}
}
