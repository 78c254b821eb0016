package cloudapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signTC3 signs r (whose body is body) as the SDKs do.
func signTC3(r *http.Request, body []byte, id, key string, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	date := now.UTC().Format("2006-01-02")
	r.Header.Set("X-TC-Timestamp", ts)
	headers := "content-type:" + r.Header.Get("Content-Type") + "\nhost:" + r.Host + "\n"
	query := ""
	if r.Method == http.MethodGet {
		query = r.URL.RawQuery
	}
	canonical := TC3CanonicalRequest(r.Method, query, headers, "content-type;host", SHA256Hex(body))
	sig := TC3Sign(key, date, "dts", TC3StringToSign(ts, date, "dts", canonical))
	r.Header.Set("Authorization", TC3Algorithm+" Credential="+id+"/"+date+"/dts/tc3_request, SignedHeaders=content-type;host, Signature="+sig)
}

func fuzzServer(now time.Time) *Server {
	s := New(Config{Service: "dts", Version: "2018-03-30", Regions: []string{"ap-guangzhou"},
		Credentials: KeyRing{"AKIDtest": "secret"}, Now: func() time.Time { return now }, DefaultRate: 1e9})
	s.Handle("Echo", 0, func(ctx context.Context, req *Request) (any, error) {
		var in sampleRequest
		if err := req.Params.Decode(&in); err != nil {
			return nil, err
		}
		return in, nil
	})
	return s
}

// FuzzRequestDecoder sends signed requests with arbitrary bodies, content
// types and query strings: every one must be answered with HTTP 200 and the
// envelope, never a panic.
func FuzzRequestDecoder(f *testing.F) {
	seeds := []struct {
		get         bool
		contentType string
		query, body string
	}{
		{false, "application/json", "", `{"JobId":"dts-1","MigrateOption":{"RunMode":1},"Table":["a"]}`},
		{false, "application/json", "", `{"Tags":[{"TagKey":"k","TagValue":["v"]}],"Offset":"3"}`},
		{false, "application/json", "", `{"MigrateOption":{"ConsistencyParams":{"SelectRowsPerTable":1e400}}}`},
		{false, "application/json", "", `[[[[[[[[[[]]]]]]]]]]`},
		{false, "application/x-www-form-urlencoded", "", "MigrateOption.RunMode=1&Table.0=a&Tags.0.TagValue.0=x"},
		{false, "application/x-www-form-urlencoded", "", "Table.99999999999=a&%zz"},
		{true, "application/x-www-form-urlencoded", "MigrateOption.ExpectTime=2026-01-01%2000:00:00&Flag=true", ""},
		{true, "application/x-www-form-urlencoded", "A.B.C.D.E=1&Table.-1=x", ""},
		{false, "multipart/form-data", "", "--x--"},
	}
	for _, s := range seeds {
		f.Add(s.get, s.contentType, s.query, s.body)
	}
	now := time.Unix(1_800_000_000, 0)
	srv := fuzzServer(now)
	f.Fuzz(func(t *testing.T, get bool, contentType, query, body string) {
		method := http.MethodPost
		if get {
			method, body = http.MethodGet, ""
		}
		r := httptest.NewRequest(method, "http://127.0.0.1:9988/", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("X-TC-Action", "Echo")
		r.Header.Set("X-TC-Version", "2018-03-30")
		r.Header.Set("X-TC-Region", "ap-guangzhou")
		signTC3(r, []byte(body), "AKIDtest", "secret", now)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("HTTP %d", w.Code)
		}
		var env struct {
			Response struct {
				RequestId string
				Error     *struct{ Code, Message string }
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, w.Body.String())
		}
		if env.Response.RequestId == "" {
			t.Fatalf("no RequestId: %s", w.Body.String())
		}
		if env.Response.Error != nil && env.Response.Error.Code == CodeInternalError {
			t.Fatalf("input made an internal error: %s", w.Body.String())
		}
	})
}
