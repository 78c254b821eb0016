package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/testredis"
)

func items(t *testing.T, sp engine.Spec) map[string]engine.CheckItem {
	t.Helper()
	res, err := newEngine().Check(context.Background(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]engine.CheckItem{}
	for _, it := range res {
		if it.Name == "ConnectDBCheck" && out[it.Name].Result == engine.ResultFail {
			continue // keep the first failure of the two
		}
		out[it.Name] = it
		for _, pw := range []string{sp.Source.Password, sp.Target.Password} {
			if pw != "" && (strings.Contains(it.Message, pw) || strings.Contains(it.Advice, pw)) {
				t.Errorf("%s shows a password: %s", it.Name, it.Message)
			}
		}
	}
	return out
}

func want(t *testing.T, got map[string]engine.CheckItem, name, result string) engine.CheckItem {
	t.Helper()
	it, ok := got[name]
	if !ok {
		t.Fatalf("no %s item", name)
	}
	if it.Result != result {
		t.Errorf("%s = %s (%s), want %s", name, it.Result, it.Message, result)
	}
	if result == engine.ResultFail && it.Advice == "" {
		t.Errorf("%s fails without advice", name)
	}
	return it
}

func TestCheckPasses(t *testing.T) {
	src := testredis.Start(t, "--requirepass", "s3cret-src")
	dst := testredis.Start(t, "--requirepass", "s3cret-dst")
	sp := spec("job-check", src, dst, engine.MigrateFullAndIncremental)
	got := items(t, sp)
	for name, it := range got {
		if it.Result != engine.ResultPass {
			t.Errorf("%s = %s: %s", name, it.Result, it.Message)
		}
	}
}

func TestCheckFailures(t *testing.T) {
	src := testredis.Start(t, "--requirepass", "s3cret-src")
	dst := testredis.Start(t, "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
	src.Do(t, "SET", "k", strings.Repeat("x", 4<<20))
	dst.Do(t, "SET", "there", "already")
	// An ACL user without the replication commands.
	src.Do(t, "ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@read", "+info", "+config|get", "+ping")

	sp := spec("job-check", src, dst, engine.MigrateFullAndIncremental)
	sp.Source.User, sp.Source.Password = "reader", "reader-pw"
	got := items(t, sp)
	want(t, got, "SrcPrivilegeCheck", engine.ResultFail)
	want(t, got, "DstEmptyCheck", engine.ResultFail)
	want(t, got, "DstMemoryCheck", engine.ResultFail)
	want(t, got, "ExternParamsCheck", engine.ResultFail)

	// Overwriting opted in: a warning, not a failure.
	sp.ExternParams = `{"WriteMode":"overwrite"}`
	want(t, items(t, sp), "DstEmptyCheck", engine.ResultWarning)

	// A wrong password: the connection fails, the rest is not run.
	sp.Source.User, sp.Source.Password = "", "wrong-password"
	got = items(t, sp)
	want(t, got, "ConnectDBCheck", engine.ResultFail)
	want(t, got, "VersionCheck", engine.ResultNotRun)

	// Databases the selection names must exist.
	sp = spec("job-check", src, dst, engine.MigrateFull)
	sp.Source.Password = "s3cret-src"
	sp.MigrateObject = engine.MigrateObjectSelected
	sp.Objects = []engine.ObjectSelection{{Database: "99"}}
	want(t, items(t, sp), "SourceObjectsCheck", engine.ResultFail)
}
