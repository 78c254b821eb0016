package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opendts/opendts/internal/cloudapi"
)

// cred is one API key pair.
type cred struct{ id, key string }

// readCredentials reads `SecretId SecretKey` lines, as opendts does.
func readCredentials(path string) ([]cred, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cred
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && !strings.HasPrefix(fields[0], "#") {
			out = append(out, cred{fields[0], fields[1]})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no credentials", path)
	}
	return out, sc.Err()
}

// caller sends TC3-signed JSON requests to one endpoint.
type caller struct {
	host string
	hc   *http.Client
}

func newCaller(endpoint string) *caller {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}
	return &caller{host: endpoint, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// call sends action and returns the API error code ("" on success) and the
// Response object's raw JSON.
func (c *caller) call(ctx context.Context, cr cred, action string, body []byte) (string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.host+"/", bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	date := now.UTC().Format("2006-01-02")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", "2018-03-30")
	req.Header.Set("X-TC-Region", "ap-guangzhou")
	req.Header.Set("X-TC-Timestamp", ts)
	canonical := cloudapi.TC3CanonicalRequest("POST", "", "content-type:application/json\nhost:"+c.host+"\n", "content-type;host", cloudapi.SHA256Hex(body))
	sig := cloudapi.TC3Sign(cr.key, date, "dts", cloudapi.TC3StringToSign(ts, date, "dts", canonical))
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s/dts/tc3_request, SignedHeaders=content-type;host, Signature=%s",
		cloudapi.TC3Algorithm, cr.id, date, sig))
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	// An error answer starts with its Error object (opendts writes the
	// envelope's keys in order); a success is not parsed, to keep the load
	// generator's share of the CPU small.
	if !bytes.HasPrefix(data, []byte(`{"Response":{"Error":`)) {
		if !bytes.HasPrefix(data, []byte(`{"Response":{`)) {
			return "", nil, fmt.Errorf("HTTP %s: not an API response: %.100s", resp.Status, data)
		}
		return "", data, nil
	}
	var env struct {
		Response struct {
			Error struct{ Code string }
		}
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return "", nil, fmt.Errorf("HTTP %s: not an API response: %.100s", resp.Status, data)
	}
	return env.Response.Error.Code, data, nil
}
