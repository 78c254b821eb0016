package dtsapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
	"github.com/opendts/opendts/internal/cloudapi"
)

// Every way the official SDK can talk: both methods, all three signatures.
func TestOfficialSDKEveryEncoding(t *testing.T) {
	e := newEnv(t)
	variants := []struct{ method, sign string }{
		{"POST", "TC3-HMAC-SHA256"},
		{"GET", "TC3-HMAC-SHA256"},
		{"POST", "HmacSHA256"},
		{"GET", "HmacSHA256"},
		{"POST", "HmacSHA1"},
		{"GET", "HmacSHA1"},
	}
	for i, v := range variants {
		t.Run(v.method+" "+v.sign, func(t *testing.T) {
			c := e.clientWith(v.method, v.sign, testID, testKey, testRegion)
			req := newJobRequest(fmt.Sprintf("job %s %s", v.method, v.sign))
			// Each variant migrates other tables, so none conflicts.
			req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":"db%d","Table":["a b","c"]}]`, i))
			resp, err := c.CreateMigrateJob(req)
			if err != nil {
				t.Fatalf("CreateMigrateJob: %v", err)
			}
			id := *resp.Response.JobId
			if len(id) != 12 || !strings.HasPrefix(id, "dts-") || strings.Trim(id[4:], "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
				t.Errorf("job id %q does not look like the cloud's", id)
			}
			d := dts.NewDescribeMigrateJobsRequest()
			d.JobId = sp(id)
			list, err := c.DescribeMigrateJobs(d)
			if err != nil {
				t.Fatalf("DescribeMigrateJobs: %v", err)
			}
			if *list.Response.TotalCount != 1 || *list.Response.JobList[0].JobName != *req.JobName {
				t.Errorf("described %d jobs, name %q", *list.Response.TotalCount, *list.Response.JobList[0].JobName)
			}
			m := dts.NewModifyMigrateJobRequest()
			m.JobId = sp(id)
			m.JobName = sp("renamed")
			m.MigrateOption = &dts.MigrateOption{RunMode: ip(1), MigrateType: ip(3), MigrateObject: ip(2), ConsistencyType: ip(3),
				ConsistencyParams: &dts.ConsistencyParams{SelectRowsPerTable: ip(10), TablesSelectAll: ip(20), TablesSelectCount: ip(30)}}
			if _, err := c.ModifyMigrateJob(m); err != nil {
				t.Fatalf("ModifyMigrateJob: %v", err)
			}
			got := e.describe(id)
			if *got.JobName != "renamed" || *got.MigrateOption.MigrateType != 3 || *got.MigrateOption.ConsistencyParams.TablesSelectCount != 30 {
				t.Errorf("modify did not take: %+v", got.MigrateOption)
			}
			del := dts.NewDeleteMigrateJobRequest()
			del.JobId = sp(id)
			if _, err := c.DeleteMigrateJob(del); err != nil {
				t.Fatalf("DeleteMigrateJob: %v", err)
			}
			regions, err := c.DescribeRegionConf(dts.NewDescribeRegionConfRequest())
			if err != nil {
				t.Fatalf("DescribeRegionConf: %v", err)
			}
			if *regions.Response.TotalCount != 2 || *regions.Response.Items[0].Region != testRegion || *regions.Response.Items[0].IsDefaultRegion != 1 {
				t.Errorf("regions: %d, first %s", *regions.Response.TotalCount, *regions.Response.Items[0].Region)
			}
		})
	}
}

// The original document's example, sent exactly as it is written: a GET
// with flattened parameters, signed with HmacSHA1.
func TestOriginalDocumentExample(t *testing.T) {
	e := newEnv(t)
	id := e.create(newJobRequest("before"))
	params := map[string]string{
		"Action": "ModifyMigrateJob", "Version": "2018-03-30", "Region": testRegion,
		"JobId": id, "JobName": "userdts",
		"DatabaseInfo":              `[{"Database":"test","Table":["user","log"]}]`,
		"MigrateOption.RunMode":     "1",
		"MigrateOption.MigrateType": "2", "MigrateOption.MigrateObject": "2",
		"MigrateOption.ConsistencyType": "5", "MigrateOption.IsOverrideRoot": "0",
		"DstInfo.ReadOnly": "0", "SrcInfo.Supplier": "others",
		"Timestamp": strconv.FormatInt(time.Now().Unix(), 10), "Nonce": "7291", "SecretId": testID,
	}
	params["Signature"] = cloudapi.V1Sign(testKey, cloudapi.HmacSHA1, cloudapi.V1StringToSign("GET", e.host, "/", params, false))
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	r, _ := http.NewRequest("GET", e.srv.URL+"/?"+q.Encode(), nil)
	resp := e.do(r)
	if code := errCode(resp); code != "" {
		t.Fatalf("error %s: %s", code, errMessage(resp))
	}
	got := e.describe(id)
	if *got.JobName != "userdts" || *got.DatabaseInfo != `[{"Database":"test","Table":["user","log"]}]` || *got.MigrateOption.ConsistencyType != 5 {
		t.Errorf("job after the example: name %q, DatabaseInfo %s", *got.JobName, *got.DatabaseInfo)
	}
	// Fields the example did not send keep their values.
	if *got.SrcInfo.Ip != "10.0.0.1" || *got.DstInfo.User != "dts" {
		t.Errorf("unsent fields changed: %s %s", *got.SrcInfo.Ip, *got.DstInfo.User)
	}
	stored, err := e.app.JobStore().GetJob(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Src.Password != "src-pa$$word" || stored.Dst.Password != "dst-pa$$word" {
		t.Error("passwords not sent by the example were lost")
	}
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t)
	t.Run("unknown SecretId", func(t *testing.T) {
		_, err := e.clientWith("POST", "TC3-HMAC-SHA256", "AKIDnobody", testKey, testRegion).DescribeRegionConf(dts.NewDescribeRegionConfRequest())
		wantCode(t, err, "AuthFailure.SecretIdNotFound")
	})
	t.Run("wrong key TC3", func(t *testing.T) {
		_, err := e.clientWith("POST", "TC3-HMAC-SHA256", testID, "wrong", testRegion).DescribeRegionConf(dts.NewDescribeRegionConfRequest())
		wantCode(t, err, "AuthFailure.SignatureFailure")
	})
	t.Run("wrong key v1", func(t *testing.T) {
		_, err := e.clientWith("GET", "HmacSHA256", testID, "wrong", testRegion).DescribeRegionConf(dts.NewDescribeRegionConfRequest())
		wantCode(t, err, "AuthFailure.SignatureFailure")
	})
	t.Run("expired timestamp", func(t *testing.T) {
		resp := e.rawTC3("DescribeRegionConf", "{}", func(r *http.Request) {
			signTC3(r, []byte("{}"), testID, testKey, time.Now().Add(-6*time.Minute))
		})
		if errCode(resp) != "AuthFailure.SignatureExpire" {
			t.Errorf("got %s", errCode(resp))
		}
		resp = e.rawTC3("DescribeRegionConf", "{}", func(r *http.Request) {
			signTC3(r, []byte("{}"), testID, testKey, time.Now().Add(6*time.Minute))
		})
		if errCode(resp) != "AuthFailure.SignatureExpire" {
			t.Errorf("future timestamp: got %s", errCode(resp))
		}
	})
	t.Run("body changed after signing", func(t *testing.T) {
		resp := e.rawTC3("DescribeRegionConf", "{}", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{ }`))
			r.ContentLength = 3
		})
		if errCode(resp) != "AuthFailure.SignatureFailure" {
			t.Errorf("got %s", errCode(resp))
		}
	})
	t.Run("no signature at all", func(t *testing.T) {
		r, _ := http.NewRequest("GET", e.srv.URL+"/?Action=DescribeRegionConf&Version=2018-03-30&Region="+testRegion, nil)
		if got := errCode(e.do(r)); got != "AuthFailure.MissingSignature" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("malformed Authorization", func(t *testing.T) {
		resp := e.rawTC3("DescribeRegionConf", "{}", func(r *http.Request) { r.Header.Set("Authorization", "Basic abc") })
		if errCode(resp) != "AuthFailure.InvalidAuthorization" {
			t.Errorf("got %s", errCode(resp))
		}
	})
	t.Run("v1 without Nonce", func(t *testing.T) {
		params := map[string]string{"Action": "DescribeRegionConf", "Version": "2018-03-30", "Region": testRegion,
			"Timestamp": strconv.FormatInt(time.Now().Unix(), 10), "SecretId": testID}
		params["Signature"] = cloudapi.V1Sign(testKey, "", cloudapi.V1StringToSign("GET", e.host, "/", params, false))
		q := url.Values{}
		for k, v := range params {
			q.Set(k, v)
		}
		r, _ := http.NewRequest("GET", e.srv.URL+"/?"+q.Encode(), nil)
		resp := e.do(r)
		if errCode(resp) != "MissingParameter" || !strings.Contains(errMessage(resp), "Nonce") {
			t.Errorf("got %s %s", errCode(resp), errMessage(resp))
		}
	})
}

func TestCommonErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, action, body string
		mutate             func(*http.Request)
		code, mention      string
	}{
		{"unknown action", "DescribeEverything", "{}", nil, "InvalidAction", "DescribeEverything"},
		{"sync action not offered", "CreateSyncJob", "{}", nil, "UnsupportedOperation", "CreateSyncJob"},
		{"wrong version", "DescribeRegionConf", "{}", func(r *http.Request) { r.Header.Set("X-TC-Version", "2021-12-06") }, "NoSuchVersion", "2021-12-06"},
		{"unserved region", "DescribeRegionConf", "{}", func(r *http.Request) { r.Header.Set("X-TC-Region", "eu-moscow") }, "UnsupportedRegion", "eu-moscow"},
		{"no region", "DescribeRegionConf", "{}", func(r *http.Request) { r.Header.Del("X-TC-Region") }, "MissingParameter", "Region"},
		{"bad language", "DescribeRegionConf", "{}", func(r *http.Request) { r.Header.Set("X-TC-Language", "fr-FR") }, "InvalidParameterValue", "Language"},
		{"integer where a string belongs", "DeleteMigrateJob", `{"JobId":5}`, nil, "InvalidParameter", "JobId"},
		{"text where an integer belongs", "DescribeMigrateJobs", `{"Limit":"ten"}`, nil, "InvalidParameter", "Limit"},
		{"unknown parameter", "DescribeMigrateJobs", `{"Limitt":5}`, nil, "UnknownParameter", "Limitt"},
		{"nested unknown parameter", "ModifyMigrateJob", `{"JobId":"dts-00000000","SrcInfo":{"Pasword":"x"}}`, nil, "UnknownParameter", "SrcInfo.Pasword"},
		{"missing required", "DeleteMigrateJob", `{}`, nil, "MissingParameter", "JobId"},
		{"broken JSON", "DeleteMigrateJob", `{"JobId":`, nil, "InvalidParameter", "JSON"},
		{"limit out of range", "DescribeMigrateJobs", `{"Limit":101}`, nil, "InvalidParameterValue", "Limit"},
		{"bad order", "DescribeMigrateJobs", `{"Order":"Password"}`, nil, "InvalidParameterValue", "Order"},
		{"bad complete mode", "CompleteMigrateJob", `{"JobId":"dts-00000000","CompleteMode":"later"}`, nil, "InvalidParameterValue", "CompleteMode"},
		{"multipart", "DescribeRegionConf", "--x--", func(r *http.Request) {}, "UnsupportedProtocol", "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutate := tt.mutate
			if tt.name == "multipart" {
				mutate = nil
			}
			var resp map[string]any
			if tt.name == "multipart" {
				r, _ := http.NewRequest("POST", e.srv.URL+"/", strings.NewReader(tt.body))
				r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
				r.Header.Set("X-TC-Action", tt.action)
				r.Header.Set("X-TC-Version", "2018-03-30")
				r.Header.Set("X-TC-Region", testRegion)
				signTC3(r, []byte(tt.body), testID, testKey, time.Now())
				resp = e.do(r)
			} else {
				resp = e.rawTC3(tt.action, tt.body, mutate)
			}
			if errCode(resp) != tt.code || !strings.Contains(errMessage(resp), tt.mention) {
				t.Errorf("got %s %q, want %s mentioning %q", errCode(resp), errMessage(resp), tt.code, tt.mention)
			}
		})
	}
	t.Run("PUT", func(t *testing.T) {
		r, _ := http.NewRequest("PUT", e.srv.URL+"/", strings.NewReader("{}"))
		if got := errCode(e.do(r)); got != "UnsupportedProtocol" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("body over 10 MB", func(t *testing.T) {
		body := `{"JobId":"` + strings.Repeat("x", 10<<20) + `"}`
		if got := errCode(e.rawTC3("DeleteMigrateJob", body, nil)); got != "RequestSizeLimitExceeded" {
			t.Errorf("got %s", got)
		}
	})
}

// A client that sends half a body and stops gets InternalError.ProtocolError
// (the document's "communication protocol error"), not a hang.
func TestTruncatedBodyIsProtocolError(t *testing.T) {
	e := newEnv(t)
	body := `{"JobId":"dts-00000000","JobName":"x"}`
	r, _ := http.NewRequest("POST", e.srv.URL+"/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", "ModifyMigrateJob")
	r.Header.Set("X-TC-Version", "2018-03-30")
	r.Header.Set("X-TC-Region", testRegion)
	signTC3(r, []byte(body), testID, testKey, time.Now())
	conn, err := net.Dial("tcp", e.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", e.host, len(body)+100)
	for k, v := range r.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprintf(conn, "\r\n%s", body)
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(text), "InternalError.ProtocolError") {
		t.Errorf("HTTP %d: %s", resp.StatusCode, text)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *app.Config) { c.Rates, c.DefaultRate = nil, 0 })
	id := e.create(newJobRequest("rate"))
	limited, ok := 0, 0
	for i := 0; i < 40; i++ {
		m := dts.NewModifyMigrateJobRequest()
		m.JobId = sp(id)
		m.JobName = sp(fmt.Sprintf("rate %d", i))
		_, err := e.client().ModifyMigrateJob(m)
		switch codeOf(t, err) {
		case "":
			ok++
		case "RequestLimitExceeded":
			limited++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	// 40 calls in well under a second against 20 per second.
	if ok < 20 || ok > 30 || limited == 0 {
		t.Errorf("%d accepted, %d limited; want about 20 accepted", ok, limited)
	}
	// The limit is per action: another action is not affected.
	if _, err := e.client().DescribeRegionConf(dts.NewDescribeRegionConfRequest()); err != nil {
		t.Errorf("DescribeRegionConf after Modify's limit: %v", err)
	}
	// And per SecretId.
	time.Sleep(1100 * time.Millisecond)
	m := dts.NewModifyMigrateJobRequest()
	m.JobId = sp(id)
	if _, err := e.client().ModifyMigrateJob(m); err != nil {
		t.Errorf("after a second the limit refills: %v", err)
	}
}

func TestGeneratedCredentials(t *testing.T) {
	dir := t.TempDir()
	a, err := app.New(t.Context(), app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	path := filepath.Join(dir, "credentials")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode %v, want 0600", st.Mode().Perm())
	}
	ring, err := cloudapi.LoadKeyRing(path)
	if err != nil || len(ring) != 1 {
		t.Fatalf("ring %v, %v", ring, err)
	}
	// A second start reuses the pair.
	a.Close()
	a2, err := app.New(t.Context(), app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a2.Close()
	ring2, _ := cloudapi.LoadKeyRing(path)
	var ids, ids2 []string
	for k := range ring {
		ids = append(ids, k)
	}
	for k := range ring2 {
		ids2 = append(ids2, k)
	}
	sort.Strings(ids)
	sort.Strings(ids2)
	if strings.Join(ids, ",") != strings.Join(ids2, ",") {
		t.Error("credentials changed across restarts")
	}
}

// A v1 request that changes something, sent twice (same Nonce and
// Timestamp), is refused the second time; another request with the same
// Nonce and Timestamp is not, nor is a read sent twice (the Node.js SDK
// polling DescribeMigrateJobs draws the same Nonce in the same second
// about once a minute); an unsigned TC3 body is refused.
func TestReplayAndUnsignedPayload(t *testing.T) {
	e := newEnv(t)
	params := map[string]string{"Action": "DeleteMigrateJob", "JobId": "dts-zzzzzzzz", "Version": "2018-03-30", "Region": testRegion,
		"Timestamp": strconv.FormatInt(time.Now().Unix(), 10), "Nonce": "424242", "SecretId": testID}
	params["Signature"] = cloudapi.V1Sign(testKey, "", cloudapi.V1StringToSign("GET", e.host, "/", params, false))
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	first, _ := http.NewRequest("GET", e.srv.URL+"/?"+q.Encode(), nil)
	if code := errCode(e.do(first)); code != "ResourceNotFound.JobNotExist" {
		t.Fatalf("first request: %s", code)
	}
	again, _ := http.NewRequest("GET", e.srv.URL+"/?"+q.Encode(), nil)
	if resp := e.do(again); errCode(resp) != "AuthFailure.SignatureFailure" || !strings.Contains(errMessage(resp), "Nonce") {
		t.Errorf("replay: %s %s", errCode(resp), errMessage(resp))
	}
	delete(params, "JobId")
	params["Action"] = "DescribeRegionConf"
	params["Signature"] = cloudapi.V1Sign(testKey, "", cloudapi.V1StringToSign("GET", e.host, "/", params, false))
	q = url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	for i := range 2 {
		read, _ := http.NewRequest("GET", e.srv.URL+"/?"+q.Encode(), nil)
		if resp := e.do(read); errCode(resp) != "" {
			t.Errorf("the same DescribeRegionConf, time %d: %s %s", i+1, errCode(resp), errMessage(resp))
		}
	}
	// Another request that happens to draw the same Nonce in the same
	// second is not a replay (the Node.js SDK draws from 0..65535).
	params["Action"] = "DescribeMigrateJobs"
	params["Signature"] = cloudapi.V1Sign(testKey, "", cloudapi.V1StringToSign("GET", e.host, "/", params, false))
	q = url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	other, _ := http.NewRequest("GET", e.srv.URL+"/?"+q.Encode(), nil)
	if resp := e.do(other); errCode(resp) != "" {
		t.Errorf("another request with the same Nonce: %s %s", errCode(resp), errMessage(resp))
	}
	resp := e.rawTC3("DescribeRegionConf", "{}", func(r *http.Request) { r.Header.Set("X-TC-Content-SHA256", "UNSIGNED-PAYLOAD") })
	if errCode(resp) != "AuthFailure.SignatureFailure" || !strings.Contains(errMessage(resp), "UNSIGNED-PAYLOAD") {
		t.Errorf("unsigned payload: %s %s", errCode(resp), errMessage(resp))
	}
}
