package dtsapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"
)

// nodeTestsDir is tests/node with its packages installed. The test is
// skipped only when node itself is missing; with node present, packages
// not installed (scripts/test.sh runs `npm ci` there) or not the pinned
// version fail it, so a machine that could run it never silently doesn't.
func nodeTestsDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the official Node.js SDK tests need Node.js and `npm ci` in tests/node")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "tests", "node"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	readJSON(t, filepath.Join(dir, "package.json"), &pkg)
	want := pkg.Dependencies["tencentcloud-sdk-nodejs"]
	installed := filepath.Join(dir, "node_modules", "tencentcloud-sdk-nodejs", "package.json")
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("the Node.js SDK is not installed: run `npm ci` in %s (scripts/test.sh does): %v", dir, err)
	}
	var got struct{ Version string }
	readJSON(t, installed, &got)
	if got.Version != want {
		t.Fatalf("tests/node has tencentcloud-sdk-nodejs %s installed, package.json pins %s: run `npm ci` in %s", got.Version, want, dir)
	}
	return dir
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// childEnv is the test's environment for a client process, without proxy
// settings (the Node SDK sends through http_proxy when it is set) and with
// the given variables.
func childEnv(vars ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "all_proxy", "node_extra_ca_certs":
			continue
		}
		if strings.HasPrefix(name, "OPENDTS_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, vars...)
}

// The official Node.js SDK drives every migration action against a real
// server in each of its signing modes, over HTTP and HTTPS, and gets the
// common errors' codes.
func TestNodeSDK(t *testing.T) {
	dir := nodeTestsDir(t)
	t.Run("http", func(t *testing.T) {
		e := newEnv(t)
		runNodeSDK(t, e, dir, "http://", e.host)
	})
	t.Run("https", func(t *testing.T) {
		e := newEnv(t)
		srv := httptest.NewUnstartedServer(e.handler)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		runNodeSDK(t, e, dir, "https://", strings.TrimPrefix(srv.URL, "https://"), "NODE_EXTRA_CA_CERTS="+ca)
	})
}

// runNodeSDK runs tests/node/dts_sdk.js against endpoint (served by e) and
// checks what it reports and what it left on the server.
func runNodeSDK(t *testing.T, e *env, dir, protocol, endpoint string, extraEnv ...string) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "dts_sdk.js")
	cmd.Dir = dir
	cmd.Env = childEnv(append([]string{"OPENDTS_ENDPOINT=" + endpoint, "OPENDTS_PROTOCOL=" + protocol,
		"OPENDTS_SECRET_ID=" + testID, "OPENDTS_SECRET_KEY=" + testKey, "OPENDTS_REGION=" + testRegion}, extraEnv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("node dts_sdk.js: %v\n%s", err, stderr.String())
	}

	type line struct {
		Mode, Check, Error, Job string
		OK                      bool
		Want                    any
	}
	results := map[string]line{}
	var jobs []line
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("dts_sdk.js printed %q: %v", sc.Text(), err)
		}
		if l.Job != "" {
			jobs = append(jobs, l)
			continue
		}
		results[l.Mode+"/"+l.Check] = l
	}
	modes := []string{"TC3 POST", "TC3 GET", "HmacSHA256 POST", "HmacSHA256 GET", "HmacSHA1 POST", "HmacSHA1 GET"}
	checks := []string{"DescribeRegionConf", "CreateMigrateJob", "DescribeMigrateJobs", "ModifyMigrateJob",
		"CreateMigrateCheckJob", "DescribeMigrateCheckJob", "StartMigrateJob", "CompleteMigrateJob", "StopMigrateJob",
		"DeleteMigrateJob", "wrong key", "unknown SecretId", "missing JobId", "job that does not exist", "right key after the errors"}
	for _, mode := range modes {
		for _, check := range checks {
			t.Run(mode+"/"+check, func(t *testing.T) {
				l, ok := results[mode+"/"+check]
				switch {
				case !ok:
					t.Errorf("dts_sdk.js did not report it\nstderr: %s", stderr.String())
				case !l.OK:
					t.Error(l.Error)
				}
			})
		}
	}

	// The server's own view of what the SDK left behind.
	if len(jobs) != 2*len(modes) {
		t.Errorf("dts_sdk.js reported %d jobs, want %d", len(jobs), 2*len(modes))
	}
	for _, j := range jobs {
		req := dts.NewDescribeMigrateJobsRequest()
		req.JobId = sp(j.Job)
		resp, err := e.client().DescribeMigrateJobs(req)
		if err != nil {
			t.Fatal(err)
		}
		if j.Want == "deleted" {
			if *resp.Response.TotalCount != 0 {
				t.Errorf("%s: job %s deleted through the Node SDK is still listed", j.Mode, j.Job)
			}
			continue
		}
		if *resp.Response.TotalCount != 1 {
			t.Errorf("%s: job %s not found", j.Mode, j.Job)
			continue
		}
		got := resp.Response.JobList[0]
		if *got.Status != 9 || *got.JobName != "renamed "+j.Mode || *got.SrcInfo.Ip != "10.0.0.1" || *got.DstInfo.Port != 3306 ||
			*got.MigrateOption.ConsistencyParams.SelectRowsPerTable != 10 ||
			!strings.Contains(*got.DatabaseInfo, `"order items"`) {
			b, _ := json.Marshal(got)
			t.Errorf("%s: job %s as the Go SDK sees it: %s", j.Mode, j.Job, b)
		}
	}
	if t.Failed() && stderr.Len() > 0 {
		t.Logf("dts_sdk.js stderr:\n%s", stderr.String())
	}
}
