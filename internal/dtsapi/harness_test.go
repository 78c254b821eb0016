package dtsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	sdkerrors "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/enginetest"
)

const (
	testID     = "AKIDopendtsTest0001"
	testKey    = "opendts-test-secret-key"
	testRegion = "ap-guangzhou"
)

// env is one opendts server on a loopback port, with the official SDK as
// its client.
type env struct {
	t       *testing.T
	dir     string
	cfg     app.Config
	app     *app.App
	srv     *httptest.Server
	host    string
	engine  *enginetest.Script
	handler *swapHandler
}

// swapHandler lets a restarted app serve on the same address, as a real
// restart would.
type swapHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

func newEnv(t *testing.T, mutate ...func(*app.Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), engine: enginetest.New(), handler: &swapHandler{}}
	e.cfg = app.Config{
		DataDir:   e.dir,
		SecretID:  testID,
		SecretKey: testKey,
		Regions:   []string{testRegion, "ap-shanghai"},
		Engines:   engine.Registry{engine.FamilyMySQL: e.engine},
		// Tests call faster than the documented limits; TestRateLimit
		// restores them.
		DefaultRate: 10000,
		Rates:       map[string]float64{"CreateMigrateJob": 10000, "ModifyMigrateJob": 10000, "StartMigrateJob": 10000, "CreateMigrateCheckJob": 10000, "DescribeMigrateCheckJob": 10000, "DescribeMigrateJobs": 10000},
	}
	for _, m := range mutate {
		m(&e.cfg)
	}
	e.open()
	e.srv = httptest.NewServer(e.handler)
	e.host = strings.TrimPrefix(e.srv.URL, "http://")
	t.Cleanup(func() {
		e.srv.Close()
		if e.app != nil {
			e.app.Close()
		}
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	a, err := app.New(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.app = a
	e.handler.mu.Lock()
	e.handler.h = a.Handler
	e.handler.mu.Unlock()
}

// restart closes the app and opens a new one on the same data directory.
func (e *env) restart() {
	e.t.Helper()
	if err := e.app.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// client is the official SDK pointed at the server. method is GET or POST,
// sign is TC3-HMAC-SHA256, HmacSHA256 or HmacSHA1.
func (e *env) clientWith(method, sign, id, key, region string) *dts.Client {
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = e.host
	cpf.HttpProfile.Scheme = "http"
	cpf.HttpProfile.ReqMethod = method
	cpf.HttpProfile.ReqTimeout = 30
	cpf.SignMethod = sign
	c, err := dts.NewClient(common.NewCredential(id, key), region, cpf)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) client() *dts.Client {
	return e.clientWith("POST", "TC3-HMAC-SHA256", testID, testKey, testRegion)
}

// codeOf returns the API error code of an SDK error, "" for nil.
func codeOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var sdkErr *sdkerrors.TencentCloudSDKError
	if errors.As(err, &sdkErr) {
		return sdkErr.GetCode()
	}
	t.Fatalf("not an API error: %v", err)
	return ""
}

func wantCode(t *testing.T, err error, code string, msgParts ...string) {
	t.Helper()
	got := codeOf(t, err)
	if got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	for _, part := range msgParts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err.Error(), part)
		}
	}
}

func sp(s string) *string { return &s }
func ip(i int64) *int64   { return &i }

// newJobRequest is a valid full migration of two tables between two
// address-based MySQL instances.
func newJobRequest(name string) *dts.CreateMigrateJobRequest {
	req := dts.NewCreateMigrateJobRequest()
	req.JobName = sp(name)
	req.MigrateOption = &dts.MigrateOption{
		RunMode: ip(1), MigrateType: ip(2), MigrateObject: ip(2), ConsistencyType: ip(5), IsOverrideRoot: ip(0),
	}
	req.SrcDatabaseType = sp("mysql")
	req.SrcAccessType = sp("extranet")
	req.SrcInfo = &dts.SrcInfo{Ip: sp("10.0.0.1"), Port: ip(3306), User: sp("dts"), Password: sp("src-pa$$word"), Region: sp(testRegion), Supplier: sp("others")}
	req.DstDatabaseType = sp("mysql")
	req.DstAccessType = sp("extranet")
	req.DstInfo = &dts.DstInfo{Ip: sp("10.0.0.2"), Port: ip(3306), User: sp("dts"), Password: sp("dst-pa$$word"), Region: sp(testRegion), ReadOnly: ip(0)}
	req.DatabaseInfo = sp(`[{"Database":"shop","Table":["orders","users"]}]`)
	return req
}

func (e *env) create(req *dts.CreateMigrateJobRequest) string {
	e.t.Helper()
	resp, err := e.client().CreateMigrateJob(req)
	if err != nil {
		e.t.Fatalf("CreateMigrateJob: %v", err)
	}
	id := *resp.Response.JobId
	return id
}

func (e *env) describe(id string) *dts.MigrateJobInfo {
	e.t.Helper()
	req := dts.NewDescribeMigrateJobsRequest()
	req.JobId = sp(id)
	resp, err := e.client().DescribeMigrateJobs(req)
	if err != nil {
		e.t.Fatalf("DescribeMigrateJobs: %v", err)
	}
	if len(resp.Response.JobList) != 1 {
		e.t.Fatalf("DescribeMigrateJobs(%s) found %d jobs", id, len(resp.Response.JobList))
	}
	return resp.Response.JobList[0]
}

// waitStatus polls until the job reaches want, failing after a while.
func (e *env) waitStatus(id string, want int64) *dts.MigrateJobInfo {
	e.t.Helper()
	return e.waitFor(id, func(j *dts.MigrateJobInfo) bool { return *j.Status == want })
}

// waitFor polls until ok holds for the job, failing after a while.
func (e *env) waitFor(id string, ok func(*dts.MigrateJobInfo) bool) *dts.MigrateJobInfo {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := e.describe(id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(j)
			e.t.Fatalf("job %s never reached the wanted state: %s", id, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) check(id string) {
	e.t.Helper()
	req := dts.NewCreateMigrateCheckJobRequest()
	req.JobId = sp(id)
	if _, err := e.client().CreateMigrateCheckJob(req); err != nil {
		e.t.Fatalf("CreateMigrateCheckJob: %v", err)
	}
}

func (e *env) jobCall(action string, id string) error {
	c := e.client()
	switch action {
	case "Start":
		r := dts.NewStartMigrateJobRequest()
		r.JobId = sp(id)
		_, err := c.StartMigrateJob(r)
		return err
	case "Stop":
		r := dts.NewStopMigrateJobRequest()
		r.JobId = sp(id)
		_, err := c.StopMigrateJob(r)
		return err
	case "Complete":
		r := dts.NewCompleteMigrateJobRequest()
		r.JobId = sp(id)
		_, err := c.CompleteMigrateJob(r)
		return err
	case "Delete":
		r := dts.NewDeleteMigrateJobRequest()
		r.JobId = sp(id)
		_, err := c.DeleteMigrateJob(r)
		return err
	case "Check":
		r := dts.NewCreateMigrateCheckJobRequest()
		r.JobId = sp(id)
		_, err := c.CreateMigrateCheckJob(r)
		return err
	}
	e.t.Fatalf("unknown call %s", action)
	return nil
}

// rawTC3 sends a TC3-signed request built by hand, for what the SDK cannot
// send (wrong types, unknown actions, odd headers). mutate runs after
// signing.
func (e *env) rawTC3(action, body string, mutate func(*http.Request)) map[string]any {
	e.t.Helper()
	r, err := http.NewRequest("POST", e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", action)
	r.Header.Set("X-TC-Version", "2018-03-30")
	r.Header.Set("X-TC-Region", testRegion)
	signTC3(r, []byte(body), testID, testKey, time.Now())
	if mutate != nil {
		mutate(r)
	}
	return e.do(r)
}

func (e *env) do(r *http.Request) map[string]any {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("HTTP status %d", resp.StatusCode)
	}
	var out struct{ Response map[string]any }
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		e.t.Fatalf("not JSON: %s", buf.String())
	}
	if _, ok := out.Response["RequestId"].(string); !ok {
		e.t.Fatalf("no RequestId: %s", buf.String())
	}
	return out.Response
}

func errCode(resp map[string]any) string {
	e, _ := resp["Error"].(map[string]any)
	if e == nil {
		return ""
	}
	c, _ := e["Code"].(string)
	return c
}

func errMessage(resp map[string]any) string {
	e, _ := resp["Error"].(map[string]any)
	if e == nil {
		return ""
	}
	c, _ := e["Message"].(string)
	return c
}

func signTC3(r *http.Request, body []byte, id, key string, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	date := at.UTC().Format("2006-01-02")
	r.Header.Set("X-TC-Timestamp", ts)
	headers := "content-type:" + r.Header.Get("Content-Type") + "\nhost:" + r.URL.Host + "\n"
	query := ""
	if r.Method == http.MethodGet {
		query = r.URL.RawQuery
	}
	canonical := cloudapi.TC3CanonicalRequest(r.Method, query, headers, "content-type;host", cloudapi.SHA256Hex(body))
	sig := cloudapi.TC3Sign(key, date, "dts", cloudapi.TC3StringToSign(ts, date, "dts", canonical))
	r.Header.Set("Authorization", cloudapi.TC3Algorithm+" Credential="+id+"/"+date+"/dts/tc3_request, SignedHeaders=content-type;host, Signature="+sig)
}
