// Package client calls a Tencent Cloud API 3.0 endpoint (opendts or the
// cloud) with TC3-HMAC-SHA256 signed JSON requests. It is what `opendts dts`
// and the scripts use; the tests use the official SDK instead.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opendts/opendts/internal/cloudapi"
)

// Client is one endpoint with one credential.
type Client struct {
	// Endpoint is host:port, or a URL with http:// or https://.
	Endpoint  string
	SecretID  string
	SecretKey string
	Region    string
	Version   string
	HTTP      *http.Client
}

// APIError is an error answered by the API.
type APIError struct {
	Code, Message, RequestID string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s (RequestId %s)", e.Code, e.Message, e.RequestID)
}

func (c *Client) url() (string, string) {
	ep := c.Endpoint
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	ep = strings.TrimRight(ep, "/")
	host := ep[strings.Index(ep, "://")+3:]
	return ep + "/", host
}

// Call sends action with params and returns the Response object (without
// the envelope). An API error is returned as *APIError.
func (c *Client) Call(ctx context.Context, action string, params any) (map[string]any, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	if params == nil {
		body = []byte("{}")
	}
	u, host := c.url()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	version := c.Version
	if version == "" {
		version = "2018-03-30"
	}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	date := now.UTC().Format("2006-01-02")
	service := "dts"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", version)
	req.Header.Set("X-TC-Region", c.Region)
	req.Header.Set("X-TC-Timestamp", ts)
	req.Header.Set("X-TC-RequestClient", "opendts-cli")
	canonical := cloudapi.TC3CanonicalRequest("POST", "", "content-type:application/json\nhost:"+host+"\n", "content-type;host", cloudapi.SHA256Hex(body))
	sig := cloudapi.TC3Sign(c.SecretKey, date, service, cloudapi.TC3StringToSign(ts, date, service, canonical))
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s/%s/tc3_request, SignedHeaders=content-type;host, Signature=%s",
		cloudapi.TC3Algorithm, c.SecretID, date, service, sig))
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", action, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s response: %w", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("call %s: HTTP %s: %s", action, resp.Status, bytes.TrimSpace(data))
	}
	var env struct {
		Response map[string]any
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil || env.Response == nil {
		return nil, fmt.Errorf("call %s: the answer is not an API response: %.200s", action, data)
	}
	if e, ok := env.Response["Error"].(map[string]any); ok {
		rid, _ := env.Response["RequestId"].(string)
		code, _ := e["Code"].(string)
		msg, _ := e["Message"].(string)
		return nil, &APIError{Code: code, Message: msg, RequestID: rid}
	}
	return env.Response, nil
}

// ParseArgs turns tccli-style arguments (--Name value ...) into parameters:
// a value that is a JSON object or array is parsed as JSON, anything else
// kept as a string. A dotted name (--MigrateOption.RunMode 1) sets a field
// of an object. A JSON body's types are strict, so `opendts dts` then
// converts the strings to the types the action declares
// (dtsapi.ActionRef.Typed), as tccli does from the API's model.
func ParseArgs(args []string) (map[string]any, error) {
	params := map[string]any{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") || len(a) == 2 {
			return nil, fmt.Errorf("expected --Name value, got %q", a)
		}
		name := a[2:]
		var value string
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value = k, v
		} else {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			value = args[i]
		}
		var v any = value
		if t := strings.TrimSpace(value); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			var parsed any
			if err := json.Unmarshal([]byte(t), &parsed); err != nil {
				return nil, fmt.Errorf("--%s: not valid JSON: %w", name, err)
			}
			// DatabaseInfo and ExternParams are JSON text inside a string.
			if name != "DatabaseInfo" && name != "ExternParams" {
				v = parsed
			}
		}
		parts := strings.Split(name, ".")
		node := params
		for _, p := range parts[:len(parts)-1] {
			child, ok := node[p].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[p] = child
			}
			node = child
		}
		node[parts[len(parts)-1]] = v
	}
	return params, nil
}
