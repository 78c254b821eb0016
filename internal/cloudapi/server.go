// Package cloudapi speaks the Tencent Cloud API 3.0 protocol: it parses a
// request in any of its encodings (JSON body, form body, GET query, with
// dotted and indexed flattening), verifies the signature (TC3-HMAC-SHA256,
// HmacSHA1, HmacSHA256), routes by Version and Action, applies per-action
// rate limits, and writes the response and error envelope with a RequestId.
//
// It knows nothing about DTS: a product registers its actions as handlers
// that take decoded parameters and return a value or an error.
package cloudapi

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Size limits of the cloud's gateway.
const (
	maxTC3Body = 10 << 20
	maxV1Body  = 1 << 20
	maxURL     = 32 << 10
	// maxSkew is how far a request's Timestamp may be from the server clock.
	maxSkew = 5 * time.Minute
)

// commonParams are the protocol's own parameters in flattened encodings:
// they never reach an action's decoder, so they are never UnknownParameter.
var commonParams = map[string]bool{
	"Action": true, "Version": true, "Region": true, "Timestamp": true,
	"Nonce": true, "SecretId": true, "Signature": true, "SignatureMethod": true,
	"Token": true, "Language": true, "RequestClient": true,
}

// Credentials resolves a SecretId to its SecretKey.
type Credentials interface {
	SecretKey(secretID string) (string, bool)
}

// Request is what a handler sees of a verified request.
type Request struct {
	RequestID string
	Action    string
	Version   string
	Region    string
	SecretID  string
	Language  string
	Params    *Params

	// logAttrs are added to the request's log line (Annotate).
	logAttrs []any
}

// Annotate adds a key and value to the request's log line, so that a
// product can name what the request was about (a job id, say).
func (r *Request) Annotate(key string, value any) {
	r.logAttrs = append(r.logAttrs, key, value)
}

// HandlerFunc answers one action. It returns the output parameters (a
// struct that marshals to a JSON object, or nil) or an error; an *Error
// keeps its code, anything else is InternalError.
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// Config of a Server. Zero values take the defaults noted.
type Config struct {
	// Service is the product's name ("dts"), accepted as the service of a
	// TC3 credential scope besides the one SDKs derive from the host name.
	Service string
	// Version is the only API version served, e.g. "2018-03-30".
	Version string
	// Regions the server answers for; a request for another region is
	// UnsupportedRegion.
	Regions []string
	// Credentials verify signatures.
	Credentials Credentials
	// DefaultRate is the per-second limit of actions registered with rate 0,
	// per action and SecretId. Default 20.
	DefaultRate float64
	// Logger receives one line per request, never a parameter value.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Observe, when set, is told about every answered request (for metrics).
	Observe func(action, code string, elapsed time.Duration)
}

type action struct {
	handler HandlerFunc
	limits  *limiterSet
}

// Server is an http.Handler for one product's API.
type Server struct {
	cfg     Config
	actions map[string]action
	nonces  *nonceCache
}

// New makes a Server; register actions with Handle before serving.
func New(cfg Config) *Server {
	if cfg.DefaultRate <= 0 {
		cfg.DefaultRate = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, actions: map[string]action{}, nonces: &nonceCache{seen: map[string]time.Time{}}}
}

// Handle registers an action with its rate limit per SecretId (requests per
// second; 0 means the server's default).
func (s *Server) Handle(name string, perSecond float64, h HandlerFunc) {
	if perSecond <= 0 {
		perSecond = s.cfg.DefaultRate
	}
	s.actions[name] = action{handler: h, limits: newLimiterSet(perSecond)}
}

// Actions lists the registered action names.
func (s *Server) Actions() []string {
	names := make([]string, 0, len(s.actions))
	for n := range s.actions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ServeHTTP answers every request inside the envelope with HTTP 200: the
// SDKs treat any other status as a transport failure.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	requestID := uuid.NewString()
	actionName := ""
	var out any
	var err error
	var req *Request
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.Error("panic while answering", "request_id", requestID, "action", actionName,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = Errorf(CodeInternalError, "An internal error occurred; quote RequestId %s when you report it.", requestID)
			}
		}()
		req, err = s.parse(r, requestID)
		if req != nil {
			actionName = req.Action
		}
		if err != nil {
			return
		}
		a := s.actions[req.Action]
		if !a.limits.allow(req.SecretID, s.cfg.Now()) {
			err = Errorf(CodeRequestLimitExceeded, "Too many %s requests for this SecretId; the limit is %g per second.", req.Action, a.limits.perSecond)
			return
		}
		out, err = a.handler(r.Context(), req)
	}()

	code := ""
	if err != nil {
		apiErr := AsError(err)
		if apiErr == nil {
			s.cfg.Logger.Error("internal error", "request_id", requestID, "action", actionName, "err", err)
			apiErr = Errorf(CodeInternalError, "An internal error occurred; quote RequestId %s when you report it.", requestID)
		}
		code = apiErr.Code
		writeEnvelope(w, errorBody(apiErr, requestID))
	} else {
		body, mErr := successBody(out, requestID)
		if mErr != nil {
			s.cfg.Logger.Error("encode response", "request_id", requestID, "action", actionName, "err", mErr)
			code = CodeInternalError
			body = errorBody(Errorf(CodeInternalError, "The response could not be encoded; quote RequestId %s.", requestID), requestID)
		}
		writeEnvelope(w, body)
	}
	elapsed := s.cfg.Now().Sub(start)
	level := slog.LevelInfo
	switch {
	case code != "":
		level = slog.LevelWarn
	case strings.HasPrefix(actionName, "Describe"):
		// Read-only actions (API 3.0 names them Describe*) are what
		// dashboards and `opendts watch` poll twice a second: at info they
		// would bury the lines that change something.
		level = slog.LevelDebug
	}
	attrs := []any{"request_id", requestID, "action", actionName,
		"method", r.Method, "remote", r.RemoteAddr, "code", code, "elapsed_ms", elapsed.Milliseconds()}
	if req != nil {
		attrs = append(attrs, req.logAttrs...)
	}
	s.cfg.Logger.Log(r.Context(), level, "api request", attrs...)
	if s.cfg.Observe != nil {
		s.cfg.Observe(actionName, code, elapsed)
	}
}

func writeEnvelope(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func errorBody(e *Error, requestID string) []byte {
	b, _ := json.Marshal(map[string]any{"Response": map[string]any{
		"Error":     map[string]string{"Code": e.Code, "Message": e.Message},
		"RequestId": requestID,
	}})
	return b
}

// successBody splices RequestId into the handler's output object, keeping
// the output's field order.
func successBody(out any, requestID string) ([]byte, error) {
	inner := []byte("{}")
	if out != nil {
		b, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		if len(b) < 2 || b[0] != '{' {
			return nil, errors.New("cloudapi: handler output is not a JSON object")
		}
		inner = b
	}
	id, _ := json.Marshal(requestID)
	var b strings.Builder
	b.WriteString(`{"Response":`)
	b.Write(inner[:len(inner)-1])
	if len(inner) > 2 {
		b.WriteByte(',')
	}
	b.WriteString(`"RequestId":`)
	b.Write(id)
	b.WriteString("}}")
	return []byte(b.String()), nil
}

// parse reads, authenticates and routes a request. The returned Request is
// non-nil as soon as the action is known, for logging.
func (s *Server) parse(r *http.Request, requestID string) (*Request, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, Errorf(CodeUnsupportedProtocol, "The HTTP method %s is not supported; use GET or POST.", r.Method)
	}
	if len(r.URL.RawQuery) > maxURL {
		return nil, Errorf(CodeRequestSizeExceeded, "The query string is longer than %d bytes; send the request as a POST.", maxURL)
	}
	auth := r.Header.Get("Authorization")
	if auth != "" {
		return s.parseTC3(r, auth, requestID)
	}
	return s.parseV1(r, requestID)
}

// readBody reads at most limit bytes; a larger body is
// RequestSizeLimitExceeded, a body that breaks off is a protocol error.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, Errorf("InternalError.ProtocolError", "The request body could not be read completely: %s.", err)
	}
	if int64(len(body)) > limit {
		return nil, Errorf(CodeRequestSizeExceeded, "The request body is larger than %d bytes.", limit)
	}
	return body, nil
}

func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mt
}

func (s *Server) parseTC3(r *http.Request, auth, requestID string) (*Request, error) {
	cred, err := parseTC3Authorization(auth)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r, maxTC3Body)
	if err != nil {
		return nil, err
	}
	req := &Request{
		RequestID: requestID,
		Action:    r.Header.Get("X-TC-Action"),
		Version:   r.Header.Get("X-TC-Version"),
		Region:    r.Header.Get("X-TC-Region"),
		Language:  r.Header.Get("X-TC-Language"),
		SecretID:  cred.secretID,
	}
	timestamp := r.Header.Get("X-TC-Timestamp")
	if req.Action == "" {
		return nil, missing("X-TC-Action")
	}
	if timestamp == "" {
		return nil, missing("X-TC-Timestamp")
	}
	if err := s.checkTimestamp(timestamp, "X-TC-Timestamp"); err != nil {
		return req, err
	}
	key, ok := s.cfg.Credentials.SecretKey(cred.secretID)
	if !ok {
		return req, Errorf(CodeSecretIDNotFound, "The SecretId is not found.")
	}
	// Why a signature fails goes to the debug log (the client is told
	// only what is safe to tell anyone): what the server saw and, for a
	// mismatch, the hashes of what it signed. Never the key.
	sigDebug := func(why string, attrs ...any) {
		s.cfg.Logger.Debug("signature failure", append([]any{"request_id", requestID, "secret_id", cred.secretID, "why", why,
			"host", r.Host, "path", r.URL.EscapedPath(), "method", r.Method, "scope_date", cred.date, "service", cred.service,
			"signed_headers", strings.Join(cred.signedHeaders, ";"), "timestamp", timestamp}, attrs...)...)
	}
	ts, _ := strconv.ParseInt(timestamp, 10, 64)
	if date := time.Unix(ts, 0).UTC().Format("2006-01-02"); date != cred.date {
		sigDebug("the credential scope's date is not the UTC date of X-TC-Timestamp", "timestamp_date", date)
		return req, Errorf(CodeSignatureFailure, "The credential scope date %s is not the UTC date of X-TC-Timestamp (%s).", cred.date, date)
	}
	if !serviceMatches(cred.service, s.cfg.Service, signedHosts(r)) {
		sigDebug("the credential scope's service is neither the product's nor the first label of the host", "accepted_service", s.cfg.Service)
		return req, Errorf(CodeSignatureFailure, "The credential scope names service %q; sign for %q or for the first label of the endpoint's host name.", cred.service, s.cfg.Service)
	}
	if !slices.Contains(cred.signedHeaders, "content-type") || !slices.Contains(cred.signedHeaders, "host") {
		return req, Errorf(CodeInvalidAuthorization, "SignedHeaders must include content-type and host.")
	}
	if r.Header.Get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" {
		// An unsigned body could be changed by anyone who saw the request.
		return req, Errorf(CodeSignatureFailure, "UNSIGNED-PAYLOAD is not accepted: sign the request body.")
	}
	payloadHash := SHA256Hex(body)
	if ok, tried := verifyTC3(r, cred, key, timestamp, payloadHash); !ok {
		sigDebug("no spelling of the canonical request gives the signature: compare these hashes with the client's",
			"signed_host", tried.host, "canonical_uri", tried.uri, "content_type", r.Header.Get("Content-Type"),
			"payload_sha256", payloadHash, "canonical_request_sha256", tried.canonicalRequestSHA256,
			"string_to_sign_sha256", tried.stringToSignSHA256, "spellings_tried", tried.spellings)
		return req, Errorf(CodeSignatureFailure, "The provided credentials could not be validated. Please check your signature is correct.")
	}

	var tree map[string]any
	flat := true
	if r.Method == http.MethodGet {
		values, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return req, Errorf(CodeInvalidParameter, "The query string is malformed: %s.", err)
		}
		tree, err = unflatten(values, func(string) bool { return false })
		if err != nil {
			return req, err
		}
	} else {
		switch mediaType(r) {
		case "application/json":
			tree, err = parseJSONParams(body)
			flat = false
		case "application/x-www-form-urlencoded":
			tree, err = parseForm(body, func(string) bool { return false })
		default:
			err = Errorf(CodeUnsupportedProtocol, "The Content-Type %q is not supported; send application/json.", r.Header.Get("Content-Type"))
		}
		if err != nil {
			return req, err
		}
	}
	req.Params = &Params{tree: tree, flat: flat}
	return req, s.route(req)
}

func parseForm(body []byte, skip func(string) bool) (map[string]any, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, Errorf(CodeInvalidParameter, "The form body is malformed: %s.", err)
	}
	return unflatten(values, skip)
}

func (s *Server) parseV1(r *http.Request, requestID string) (*Request, error) {
	var values url.Values
	var err error
	switch r.Method {
	case http.MethodGet:
		values, err = url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, Errorf(CodeInvalidParameter, "The query string is malformed: %s.", err)
		}
	case http.MethodPost:
		mt := mediaType(r)
		if mt != "application/x-www-form-urlencoded" {
			if mt == "application/json" {
				return nil, Errorf(CodeMissingSignature, "A JSON request must be signed with TC3-HMAC-SHA256 in the Authorization header.")
			}
			return nil, Errorf(CodeUnsupportedProtocol, "The Content-Type %q is not supported; send application/json or application/x-www-form-urlencoded.", r.Header.Get("Content-Type"))
		}
		body, err := readBody(r, maxV1Body)
		if err != nil {
			return nil, err
		}
		values, err = url.ParseQuery(string(body))
		if err != nil {
			return nil, Errorf(CodeInvalidParameter, "The form body is malformed: %s.", err)
		}
	}
	flat := make(map[string]string, len(values))
	for k, v := range values {
		if len(v) != 1 {
			return nil, Errorf(CodeInvalidParameter, "The parameter `%s` is given %d times; send it once.", k, len(v))
		}
		flat[k] = v[0]
	}
	if flat["Signature"] == "" {
		return nil, Errorf(CodeMissingSignature, "The request is not signed: send a TC3-HMAC-SHA256 Authorization header, or the Signature parameter (HmacSHA1/HmacSHA256).")
	}
	req := &Request{
		RequestID: requestID,
		Action:    flat["Action"],
		Version:   flat["Version"],
		Region:    flat["Region"],
		Language:  flat["Language"],
		SecretID:  flat["SecretId"],
	}
	for _, name := range []string{"Action", "SecretId", "Timestamp", "Nonce"} {
		if flat[name] == "" {
			return nil, missing(name)
		}
	}
	if n, err := strconv.ParseUint(flat["Nonce"], 10, 64); err != nil || n == 0 {
		return req, Errorf(CodeInvalidParameter, "Parameter `Nonce` type error: expected a positive integer.")
	}
	method := flat["SignatureMethod"]
	if method != "" && method != HmacSHA1 && method != HmacSHA256 {
		return req, Errorf(CodeInvalidParamValue, "SignatureMethod must be HmacSHA1 or HmacSHA256, not %q.", method)
	}
	if err := s.checkTimestamp(flat["Timestamp"], "Timestamp"); err != nil {
		return req, err
	}
	key, ok := s.cfg.Credentials.SecretKey(req.SecretID)
	if !ok {
		return req, Errorf(CodeSecretIDNotFound, "The SecretId is not found.")
	}
	verified := false
	for _, skipEmpty := range []bool{false, true} {
		want := V1Sign(key, method, V1StringToSign(r.Method, r.Host, r.URL.Path, flat, skipEmpty))
		if hmac.Equal([]byte(want), []byte(flat["Signature"])) {
			verified = true
			break
		}
	}
	if !verified {
		s.cfg.Logger.Debug("signature failure", "request_id", requestID, "secret_id", req.SecretID,
			"why", "the v1 signature does not match", "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"signature_method", method, "string_to_sign_sha256", SHA256Hex([]byte(V1StringToSign(r.Method, r.Host, r.URL.Path, flat, false))))
		return req, Errorf(CodeSignatureFailure, "The provided credentials could not be validated. Please check your signature is correct.")
	}
	// A replay is the same signed request again, so the signature is part
	// of the key: the Node.js SDK draws its Nonce from 0..65535, and two
	// different requests it sends within one second share a Nonce often
	// enough to fail a busy script if only (Nonce, Timestamp) counted.
	// Read-only actions (Describe*) are not checked: a script polling the
	// same DescribeMigrateJobs 30 times a second sends two identical
	// signed requests in one second about once a minute, and sending a
	// read again changes nothing.
	if !readOnlyAction(flat["Action"]) && !s.nonces.fresh(req.SecretID+"\x00"+flat["Nonce"]+"\x00"+flat["Timestamp"]+"\x00"+flat["Signature"], s.cfg.Now()) {
		return req, Errorf(CodeSignatureFailure, "This request (Nonce and Timestamp) was already received: a request is signed once and sent once.")
	}
	tree, err := unflatten(values, func(k string) bool { return commonParams[k] })
	if err != nil {
		return req, err
	}
	req.Params = &Params{tree: tree, flat: true}
	return req, s.route(req)
}

func missing(name string) error {
	return Errorf(CodeMissingParameter, "The request is missing a required parameter `%s`.", name)
}

func (s *Server) checkTimestamp(text, name string) error {
	ts, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return Errorf(CodeInvalidParameter, "Parameter `%s` type error: expected Unix seconds.", name)
	}
	skew := s.cfg.Now().Sub(time.Unix(ts, 0))
	if skew > maxSkew || skew < -maxSkew {
		return Errorf(CodeSignatureExpire, "The signature is expired, please request again: the request's timestamp is %s away from the server's clock (at most 5 minutes allowed).", skew.Round(time.Second).Abs())
	}
	return nil
}

// route checks what only makes sense once the caller is known: version,
// action, region, language.
func (s *Server) route(req *Request) error {
	if req.Version == "" {
		return missing("Version")
	}
	if req.Version != s.cfg.Version {
		return Errorf(CodeNoSuchVersion, "The API version `%s` does not exist; this endpoint serves %s.", req.Version, s.cfg.Version)
	}
	if _, ok := s.actions[req.Action]; !ok {
		return Errorf(CodeInvalidAction, "The request `Action` is invalid or not found: %q.", req.Action)
	}
	if req.Region == "" {
		return missing("Region")
	}
	if !slices.Contains(s.cfg.Regions, req.Region) {
		return Errorf(CodeUnsupportedRegion, "The region %q is not served here; this endpoint serves %s.", req.Region, strings.Join(s.cfg.Regions, ", "))
	}
	if req.Language != "" && req.Language != "zh-CN" && req.Language != "en-US" {
		return Errorf(CodeInvalidParamValue, "Language must be zh-CN or en-US, not %q.", req.Language)
	}
	return nil
}

// readOnlyAction reports whether an action only reads (the API names
// every such action Describe...).
func readOnlyAction(name string) bool { return strings.HasPrefix(name, "Describe") }
