package cloudapi

import (
	"errors"
	"fmt"
)

// Error is an API-level error: it travels to the client as
// {"Response": {"Error": {"Code", "Message"}, "RequestId"}} with HTTP 200.
// Product packages return it (or wrap it) from their handlers; anything else
// a handler returns becomes InternalError.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError finds the API error inside err, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// The common error codes of the Tencent Cloud API 3.0 that this package
// produces itself.
const (
	CodeInvalidAuthorization = "AuthFailure.InvalidAuthorization"
	CodeMissingSignature     = "AuthFailure.MissingSignature"
	CodeSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeSignatureFailure     = "AuthFailure.SignatureFailure"
	CodeInternalError        = "InternalError"
	CodeInvalidAction        = "InvalidAction"
	CodeInvalidParameter     = "InvalidParameter"
	CodeInvalidParamValue    = "InvalidParameterValue"
	CodeMissingParameter     = "MissingParameter"
	CodeNoSuchVersion        = "NoSuchVersion"
	CodeRequestLimitExceeded = "RequestLimitExceeded"
	CodeRequestSizeExceeded  = "RequestSizeLimitExceeded"
	CodeUnknownParameter     = "UnknownParameter"
	CodeUnsupportedProtocol  = "UnsupportedProtocol"
	CodeUnsupportedRegion    = "UnsupportedRegion"
	CodeServiceUnavailable   = "ServiceUnavailable"
)
