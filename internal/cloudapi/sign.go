package cloudapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"sort"
	"strings"
)

// TC3Algorithm is the name of signature version 3.
const TC3Algorithm = "TC3-HMAC-SHA256"

// Signature methods of version 1.
const (
	HmacSHA1   = "HmacSHA1"
	HmacSHA256 = "HmacSHA256"
)

// SHA256Hex is the lower-case hex SHA-256 of s, as TC3 hashes payloads and
// canonical requests.
func SHA256Hex(s []byte) string {
	sum := sha256.Sum256(s)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// TC3CanonicalRequest joins the parts of a TC3 canonical request with the
// canonical URI "/", as the documentation and the Go SDK sign. headers are
// the signed headers' name:value lines already sorted and lower-cased, each
// ending in "\n".
func TC3CanonicalRequest(method, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash string) string {
	return TC3CanonicalRequestURI(method, "/", canonicalQuery, canonicalHeaders, signedHeaders, payloadHash)
}

// TC3CanonicalRequestURI is TC3CanonicalRequest with another canonical URI
// (the Node.js SDK signs the URL's path).
func TC3CanonicalRequestURI(method, uri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash string) string {
	return method + "\n" + uri + "\n" + canonicalQuery + "\n" + canonicalHeaders + "\n" + signedHeaders + "\n" + payloadHash
}

// TC3StringToSign builds the string a TC3 signature covers.
func TC3StringToSign(timestamp, date, service, canonicalRequest string) string {
	return TC3Algorithm + "\n" + timestamp + "\n" + date + "/" + service + "/tc3_request\n" + SHA256Hex([]byte(canonicalRequest))
}

// TC3Sign derives the signing key from the secret key, the UTC date and the
// service, and signs stringToSign; the result is lower-case hex.
func TC3Sign(secretKey, date, service, stringToSign string) string {
	kDate := hmacSHA256([]byte("TC3"+secretKey), date)
	kService := hmacSHA256(kDate, service)
	kSigning := hmacSHA256(kService, "tc3_request")
	return hex.EncodeToString(hmacSHA256(kSigning, stringToSign))
}

// V1StringToSign builds the version 1 string to sign: method, host, path,
// "?", then every parameter but Signature sorted by name as k=v joined by &,
// values not URL-encoded. skipEmpty leaves out empty values, as the Go SDK
// does when it signs (it never sends them either).
func V1StringToSign(method, host, path string, params map[string]string, skipEmpty bool) string {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if k == "Signature" || (skipEmpty && v == "") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(method)
	b.WriteString(host)
	b.WriteString(path)
	b.WriteByte('?')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

// V1Sign signs with HmacSHA256 when method says so and HmacSHA1 otherwise,
// as the cloud does; the result is base64.
func V1Sign(secretKey, method, stringToSign string) string {
	var h func() hash.Hash = sha1.New
	if method == HmacSHA256 {
		h = sha256.New
	}
	m := hmac.New(h, []byte(secretKey))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
