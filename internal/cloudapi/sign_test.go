package cloudapi

import "testing"

// The expected signatures come from the cloud's documentation (the first
// TC3 and HmacSHA1 vectors) and from a separate Python implementation of the
// documented steps (the others); none is computed by this package.
const docKey = "Gu5t9xGARNpq86cd98joQYCN3*******"

func TestTC3Vectors(t *testing.T) {
	tests := []struct {
		name, method, query, headers, payload, timestamp, date, service string
		wantCanonicalHash, wantSignature                                string
	}{
		{
			name:   "documented POST",
			method: "POST", headers: "content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n",
			payload:   `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`,
			timestamp: "1551113065", date: "2019-02-25", service: "cvm",
			wantCanonicalHash: "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
			wantSignature:     "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
		},
		{
			name:   "GET to a self-hosted endpoint, service derived from the host",
			method: "GET", query: "JobId=dts-1kl0iy0v&Limit=10",
			headers:   "content-type:application/x-www-form-urlencoded\nhost:127.0.0.1:9988\n",
			timestamp: "1700000000", date: "2023-11-14", service: "127",
			wantSignature: "db0272b4a9d218e624b649a03fe25120a6a5298c86758b4d8f187e6c9e183110",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			canonical := TC3CanonicalRequest(tt.method, tt.query, tt.headers, "content-type;host", SHA256Hex([]byte(tt.payload)))
			if tt.wantCanonicalHash != "" {
				if got := SHA256Hex([]byte(canonical)); got != tt.wantCanonicalHash {
					t.Errorf("canonical request hash = %s, want %s", got, tt.wantCanonicalHash)
				}
			}
			got := TC3Sign(docKey, tt.date, tt.service, TC3StringToSign(tt.timestamp, tt.date, tt.service, canonical))
			if got != tt.wantSignature {
				t.Errorf("signature = %s, want %s", got, tt.wantSignature)
			}
		})
	}
}

func TestV1Vectors(t *testing.T) {
	base := map[string]string{
		"Action": "DescribeInstances", "InstanceIds.0": "ins-09dx96dg", "Limit": "20",
		"Nonce": "11886", "Offset": "0", "Region": "ap-guangzhou",
		"SecretId": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Timestamp": "1465185768",
		"Version": "2017-03-12",
	}
	withMethod := map[string]string{"SignatureMethod": HmacSHA256, "Signature": "ignored"}
	for k, v := range base {
		withMethod[k] = v
	}
	tests := []struct {
		name, method, host, sigMethod string
		params                        map[string]string
		want                          string
	}{
		{"documented HmacSHA1 GET", "GET", "cvm.tencentcloudapi.com", HmacSHA1, base, "zmmjn35mikh6pM3V7sUEuX4wyYM="},
		{"HmacSHA256 POST with a port, Signature left out", "POST", "127.0.0.1:9988", HmacSHA256, withMethod, "J8YGy+Kxt/oKr7DPo+y23BAKdqd/lJLPVDYrnc92gFY="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := V1Sign(docKey, tt.sigMethod, V1StringToSign(tt.method, tt.host, "/", tt.params, false))
			if got != tt.want {
				t.Errorf("signature = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestV1StringToSignSortsBytewise(t *testing.T) {
	got := V1StringToSign("GET", "h", "/", map[string]string{"InstanceIds.2": "b", "InstanceIds.12": "a", "Empty": ""}, true)
	want := "GETh/?InstanceIds.12=a&InstanceIds.2=b"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
