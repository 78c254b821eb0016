package dtsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"
)

// The Go SDK with an Endpoint that has a path, and over HTTPS (HTTP/2, as
// `opendts serve -tls-cert` offers it), in every signing mode.
func TestOfficialSDKEndpointPathAndHTTPS(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("seen through every endpoint"))
	tlsSrv := httptest.NewUnstartedServer(e.handler)
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")

	endpoints := []struct {
		name, scheme, endpoint string
	}{
		{"http with a path", "http", e.host + "/dts"},
		{"http with a deeper path", "http", e.host + "/api/dts"},
		{"https", "https", tlsHost},
		{"https with a path", "https", tlsHost + "/dts"},
	}
	for _, ep := range endpoints {
		for _, v := range []struct{ method, sign string }{
			{"POST", "TC3-HMAC-SHA256"}, {"GET", "TC3-HMAC-SHA256"},
			{"POST", "HmacSHA256"}, {"GET", "HmacSHA256"},
			{"POST", "HmacSHA1"}, {"GET", "HmacSHA1"},
		} {
			t.Run(ep.name+"/"+v.method+" "+v.sign, func(t *testing.T) {
				cpf := profile.NewClientProfile()
				cpf.HttpProfile.Endpoint = ep.endpoint
				cpf.HttpProfile.Scheme = ep.scheme
				cpf.HttpProfile.ReqMethod = v.method
				cpf.HttpProfile.ReqTimeout = 30
				cpf.SignMethod = v.sign
				c, err := dts.NewClient(common.NewCredential(testID, testKey), testRegion, cpf)
				if err != nil {
					t.Fatal(err)
				}
				if ep.scheme == "https" {
					c.WithHttpTransport(tlsSrv.Client().Transport)
				}
				req := dts.NewDescribeMigrateJobsRequest()
				req.JobName = sp("every endpoint")
				resp, err := c.DescribeMigrateJobs(req)
				if err != nil {
					t.Fatalf("DescribeMigrateJobs: %v", err)
				}
				if *resp.Response.TotalCount != 1 || *resp.Response.JobList[0].JobId != id {
					t.Errorf("found %d jobs", *resp.Response.TotalCount)
				}
				// A signature made for one endpoint does not verify at
				// another: the wrong key proves the check still runs.
				bad, _ := dts.NewClient(common.NewCredential(testID, testKey+"x"), testRegion, cpf)
				if ep.scheme == "https" {
					bad.WithHttpTransport(tlsSrv.Client().Transport)
				}
				_, err = bad.DescribeMigrateJobs(req)
				wantCode(t, err, "AuthFailure.SignatureFailure")
			})
		}
	}
}

// readmeSnippet is the first sh block after the heading named in README.md.
func readmeSnippet(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "### "+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	_, rest, ok := strings.Cut(text[i:], "\n```sh\n")
	snippet, _, closed := strings.Cut(rest, "\n```\n")
	if !ok || !closed {
		t.Fatalf("README.md section %q has no sh block", heading)
	}
	return snippet
}

// The README's hand-signed curl request, exactly as the README shows it,
// against a real server.
func TestREADMECurlExample(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the README's curl example needs bash, curl, openssl and awk", tool)
		}
	}
	snippet := readmeSnippet(t, "Calling the API without an SDK")
	e := newEnv(t)
	id := e.create(newJobRequest("listed by curl"))
	run := func(key string) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", snippet)
		cmd.Env = childEnv("OPENDTS_ENDPOINT="+e.host, "OPENDTS_SECRET_ID="+testID, "OPENDTS_SECRET_KEY="+key)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the README's snippet: %v\n%s", err, out)
		}
		var resp struct{ Response map[string]any }
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("the README's snippet printed %q: %v", out, err)
		}
		return resp.Response
	}
	resp := run(testKey)
	if code := errCode(resp); code != "" {
		t.Fatalf("%s: %s", code, errMessage(resp))
	}
	list, _ := resp["JobList"].([]any)
	if resp["TotalCount"] != float64(1) || len(list) != 1 || !strings.Contains(fmt.Sprint(list[0]), id) {
		t.Errorf("DescribeMigrateJobs through curl: %v", resp)
	}
	if code := errCode(run(testKey + "x")); code != "AuthFailure.SignatureFailure" {
		t.Errorf("with the wrong key: %s", code)
	}
}
