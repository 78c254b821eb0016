package cloudapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func loggedServer(now time.Time, level slog.Level) (*Server, *bytes.Buffer) {
	var buf bytes.Buffer
	s := New(Config{Service: "dts", Version: "2018-03-30", Regions: []string{"ap-guangzhou"},
		Credentials: KeyRing{"AKIDtest": "secret-key-never-logged"}, Now: func() time.Time { return now }, DefaultRate: 1e9,
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))})
	for _, name := range []string{"DescribeThings", "ChangeThings"} {
		s.Handle(name, 0, func(context.Context, *Request) (any, error) { return nil, nil })
	}
	return s, &buf
}

func send(s *Server, action, body, key string, now time.Time, mutate func(*http.Request)) {
	r := httptest.NewRequest("POST", "http://127.0.0.1:9988/", strings.NewReader(body))
	r.Host = "127.0.0.1:9988"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", action)
	r.Header.Set("X-TC-Version", "2018-03-30")
	r.Header.Set("X-TC-Region", "ap-guangzhou")
	signTC3(r, []byte(body), "AKIDtest", key, now)
	if mutate != nil {
		mutate(r)
	}
	s.ServeHTTP(httptest.NewRecorder(), r)
}

// A signature that does not verify says why at debug: what the server
// signed (host, scope, signed headers, the hashes of its canonical request
// and string to sign), so an operator can compare with the client; never
// the key, and nothing at info.
func TestSignatureFailureLogsWhyAtDebug(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		key    string
		mutate func(*http.Request)
		want   []string
	}{
		{"wrong key", "another-key", nil, []string{"string_to_sign_sha256=", "canonical_request_sha256=", "signed_host=127.0.0.1:9988", "signed_headers=content-type;host", "payload_sha256="}},
		{"host changed on the way", "secret-key-never-logged", func(r *http.Request) { r.Host = "10.0.0.9:9988" }, []string{"host=10.0.0.9:9988", "string_to_sign_sha256="}},
		{"scope date", "secret-key-never-logged", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), now.UTC().Format("2006-01-02"), "2001-01-01", 1))
		}, []string{"scope_date=2001-01-01", "timestamp_date="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, buf := loggedServer(now, slog.LevelDebug)
			send(s, "ChangeThings", `{"A":1}`, tt.key, now, tt.mutate)
			out := buf.String()
			if !strings.Contains(out, "signature failure") {
				t.Fatalf("no debug line:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("the log does not show %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "secret-key-never-logged") {
				t.Error("the key is in the log")
			}
			s, buf = loggedServer(now, slog.LevelInfo)
			send(s, "ChangeThings", `{"A":1}`, tt.key, now, tt.mutate)
			if strings.Contains(buf.String(), "signature failure") {
				t.Errorf("the reason is logged at info:\n%s", buf.String())
			}
		})
	}
}

// Read-only actions are polled (watch, dashboards): their request lines
// are at debug; the others, and every error, stay visible at info.
func TestReadOnlyRequestsLogAtDebug(t *testing.T) {
	now := time.Now()
	s, buf := loggedServer(now, slog.LevelInfo)
	send(s, "DescribeThings", `{}`, "secret-key-never-logged", now, nil)
	if buf.Len() != 0 {
		t.Errorf("a Describe request logged at info: %s", buf.String())
	}
	send(s, "ChangeThings", `{}`, "secret-key-never-logged", now, nil)
	if !strings.Contains(buf.String(), "action=ChangeThings") {
		t.Errorf("a changing request is not logged at info: %s", buf.String())
	}
	buf.Reset()
	send(s, "DescribeThings", `{}`, "wrong", now, nil)
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("a failed Describe request is not logged: %s", buf.String())
	}
}
