package cloudapi

import (
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TC3 verification. The signature always covers the method, the query of a
// GET, the body, every header the client lists in SignedHeaders (at least
// content-type and host) and the credential scope. Clients differ only in
// how they write the endpoint into the canonical request, so the verifier
// tries the few spellings the clients in use produce for the endpoint this
// request actually reached (signedHosts, signedURIs). Every spelling names
// the Host the request was sent to, so a request signed for another host
// never verifies.

type tc3Credential struct {
	secretID, date, service string
	signedHeaders           []string
	signature               string
}

// parseTC3Authorization reads
// "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX".
// SERVICE may itself hold "/": the Node.js SDK names the service after
// everything before the endpoint's first dot, so an endpoint
// "localhost:9988/dts" gives the service "localhost:9988/dts".
func parseTC3Authorization(h string) (tc3Credential, error) {
	bad := func(why string) (tc3Credential, error) {
		return tc3Credential{}, Errorf(CodeInvalidAuthorization, "The Authorization header is malformed: %s.", why)
	}
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != TC3Algorithm {
		return bad("it must start with " + TC3Algorithm)
	}
	var c tc3Credential
	var scope string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return bad("expected Credential=, SignedHeaders= and Signature=")
		}
		switch k {
		case "Credential":
			scope = v
		case "SignedHeaders":
			if v != "" {
				c.signedHeaders = strings.Split(v, ";")
			}
		case "Signature":
			c.signature = v
		default:
			return bad("unknown field " + strconv.Quote(k))
		}
	}
	fields := strings.Split(scope, "/")
	n := len(fields)
	if n < 4 || fields[n-1] != "tc3_request" || fields[0] == "" {
		return bad("Credential must be SecretId/YYYY-MM-DD/service/tc3_request")
	}
	service := strings.Join(fields[2:n-1], "/")
	if service == "" {
		return bad("Credential must be SecretId/YYYY-MM-DD/service/tc3_request")
	}
	if _, err := time.Parse("2006-01-02", fields[1]); err != nil {
		return bad("the Credential date must be YYYY-MM-DD")
	}
	if len(c.signedHeaders) == 0 || c.signature == "" {
		return bad("SignedHeaders and Signature are required")
	}
	if !slices.IsSorted(c.signedHeaders) {
		return bad("SignedHeaders must be sorted")
	}
	for _, name := range c.signedHeaders {
		if name == "" || name != strings.ToLower(name) {
			return bad("SignedHeaders must be lower-case names")
		}
	}
	c.secretID, c.date, c.service = fields[0], fields[1], service
	return c, nil
}

// tc3Attempt is what the server signed for the most common spelling of a
// request, logged at debug when no spelling verifies: a client's developer
// compares these hashes with the ones their code computed to see which step
// differs. No part of it can reveal the key or a parameter's value.
type tc3Attempt struct {
	host, uri              string
	canonicalRequestSHA256 string
	stringToSignSHA256     string
	spellings              int
}

// verifyTC3 reports whether cred's signature signs r, whose body hashes to
// payloadHash, with key; when it does not, what was tried first.
func verifyTC3(r *http.Request, cred tc3Credential, key, timestamp, payloadHash string) (bool, tc3Attempt) {
	query := ""
	if r.Method == http.MethodGet {
		query = r.URL.RawQuery
	}
	signedHeaders := strings.Join(cred.signedHeaders, ";")
	signingKey := tc3SigningKey(key, cred.date, cred.service)
	var tried []string
	var first tc3Attempt
	for _, host := range signedHosts(r) {
		for _, uri := range signedURIs(r) {
			// The documentation lower-cases header values, the SDKs send
			// them as they are; both sign the same request.
			for _, lower := range []bool{false, true} {
				canonical := TC3CanonicalRequestURI(r.Method, uri, query, canonicalHeaders(r, cred.signedHeaders, host, lower), signedHeaders, payloadHash)
				if slices.Contains(tried, canonical) {
					continue
				}
				tried = append(tried, canonical)
				sts := TC3StringToSign(timestamp, cred.date, cred.service, canonical)
				if len(tried) == 1 {
					first = tc3Attempt{host: host, uri: uri, canonicalRequestSHA256: SHA256Hex([]byte(canonical)), stringToSignSHA256: SHA256Hex([]byte(sts))}
				}
				want := hex.EncodeToString(hmacSHA256(signingKey, sts))
				if hmac.Equal([]byte(want), []byte(cred.signature)) {
					return true, tc3Attempt{}
				}
			}
		}
	}
	first.spellings = len(tried)
	return false, first
}

// tc3SigningKey is the key TC3Sign derives, computed once per request.
func tc3SigningKey(secretKey, date, service string) []byte {
	kDate := hmacSHA256([]byte("TC3"+secretKey), date)
	kService := hmacSHA256(kDate, service)
	return hmacSHA256(kService, "tc3_request")
}

// signedHosts lists the values clients sign as the host header for the
// endpoint r reached, most common first:
//   - the Host header as sent: the documentation, the Go SDK, tccli;
//   - the Host without its port: the Node.js SDK (4.x) signs the URL's
//     hostname while it sends host:port ("127.0.0.1" for 127.0.0.1:9988);
//   - the Host followed by the request's path without its last "/": the Go
//     SDK with an Endpoint that has a path ("127.0.0.1:9988/dts") signs that
//     string as the host and requests "/dts/".
//
// Each one starts with the host name the request was sent to, so a
// signature made for another server does not verify here. Only the second
// leaves the port out, and only because that client never signs it: a
// signature that names a port still has to name this one.
func signedHosts(r *http.Request) []string {
	hosts := []string{r.Host}
	if h := hostWithoutPort(r.Host); h != r.Host {
		hosts = append(hosts, h)
	}
	if p := strings.TrimSuffix(r.URL.EscapedPath(), "/"); p != "" {
		hosts = append(hosts, r.Host+p)
	}
	return hosts
}

// signedURIs lists the canonical URIs clients sign: "/" whatever the path
// (the documentation, the Go SDK), or the path requested (the Node.js SDK
// signs the URL's pathname).
func signedURIs(r *http.Request) []string {
	if p := r.URL.EscapedPath(); p != "" && p != "/" {
		return []string{"/", p}
	}
	return []string{"/"}
}

// hostWithoutPort strips ":port" from a Host header, keeping an IPv6
// address's brackets as URL.hostname does ("[::1]:9988" gives "[::1]").
func hostWithoutPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}

// canonicalHeaders renders the signed headers' lines, with host as the
// host header's value.
func canonicalHeaders(r *http.Request, names []string, host string, lowerValues bool) string {
	var b strings.Builder
	for _, name := range names {
		var v string
		if name == "host" {
			v = host
		} else {
			v = strings.Join(r.Header.Values(name), ",")
		}
		v = strings.TrimSpace(v)
		if lowerValues {
			v = strings.ToLower(v)
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return b.String()
}

// serviceMatches accepts the product's name or what SDKs derive from a
// self-hosted endpoint: everything before the first "." of one of the
// signed host values, with or without a port ("127" for 127.0.0.1:9988,
// "localhost:9988" or "localhost" for localhost:9988). Case is ignored:
// the Node.js SDK names the service after the endpoint as the user typed
// it and sends the host lower-cased. (The service only selects the signing
// key, which the signature is checked with, so this loosens nothing.)
func serviceMatches(service, product string, hosts []string) bool {
	if service == product {
		return true
	}
	for _, h := range hosts {
		for _, v := range []string{h, hostWithoutPort(h)} {
			if label, _, _ := strings.Cut(v, "."); strings.EqualFold(service, label) {
				return true
			}
		}
	}
	return false
}
