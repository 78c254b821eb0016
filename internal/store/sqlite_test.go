package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
)

func TestPasswordsAreSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	key, _, _ := secret.LoadOrCreateKey("", dir)
	box, _ := secret.New(key)
	path := filepath.Join(dir, "opendts.db")
	s, err := Open(path, box)
	if err != nil {
		t.Fatal(err)
	}
	j := &jobs.Job{ID: "dts-aaaaaaaa", Name: "n", Status: jobs.StatusCreated, CreateTime: time.Now(),
		Src:          jobs.SrcInfo{Ip: "10.0.0.1", Password: "source-hunter2"},
		Dst:          jobs.DstInfo{Ip: "10.0.0.2", Password: "target-hunter2"},
		SrcInfoMulti: []jobs.SrcInfo{{Ip: "10.0.0.3", Password: "node-hunter2"}},
		Tags:         []jobs.Tag{{Key: "env", Value: "prod"}},
	}
	if err := s.CreateJob(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Src.Password != "source-hunter2" || got.Dst.Password != "target-hunter2" || got.SrcInfoMulti[0].Password != "node-hunter2" {
		t.Errorf("passwords did not round-trip: %+v", got)
	}
	s.Close()
	for _, f := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(data, []byte("hunter2")) {
			t.Errorf("%s holds a password in plain text", filepath.Base(f))
		}
		if !bytes.Contains(data, []byte("10.0.0.1")) && f == path {
			t.Logf("%s: data not checkpointed yet", f)
		}
	}
	// A different master key cannot read them, and says so.
	otherKey, _ := secret.ParseKey("0000000000000000000000000000000000000000000000000000000000000000")
	otherBox, _ := secret.New(otherKey)
	s2, err := Open(path, otherBox)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.GetJob(t.Context(), j.ID); err == nil {
		t.Error("read with the wrong master key")
	}
	if _, err := s2.GetJob(t.Context(), "dts-missing0"); err != jobs.ErrNotFound {
		t.Errorf("missing job: %v", err)
	}
}
