// Package dtsapi is the DTS 2018-03-30 data-migration API: the request and
// response types of each action, the checks on what a client sent, the
// mapping onto the job service, and the product's error codes. The protocol
// (signatures, encodings, envelope) is cloudapi's; the rules of a job's life
// are jobs'.
package dtsapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/jobs"
)

// Version is the API version served.
const Version = "2018-03-30"

// Service is the product name, also the service of TC3 credential scopes.
const Service = "dts"

// Product error codes.
const (
	codeJobNotExist     = "ResourceNotFound.JobNotExist"
	codeNotAllow        = "FailedOperation.NotAllowOperation"
	codeDuplicateJob    = "InternalError.DuplicateJob"
	codeDatabaseError   = "InternalError.DatabaseError"
	codeMaxUnusedJobs   = "LimitExceeded.MaxUnusedJobs"
	codeUnsupportedOper = "UnsupportedOperation"
)

// API answers the migration actions with a job service.
type API struct {
	jobs    *jobs.Service
	regions []string
}

// Rates are the documented per-second limits per action and SecretId;
// actions not listed take the server's default.
var Rates = map[string]float64{
	"CreateMigrateJob":        20,
	"ModifyMigrateJob":        20,
	"StartMigrateJob":         20,
	"CreateMigrateCheckJob":   20,
	"DescribeMigrateCheckJob": 20,
	"DescribeMigrateJobs":     50,
}

// Register adds every migration action to srv. rates overrides Rates for
// the actions it names.
func Register(srv *cloudapi.Server, svc *jobs.Service, regions []string, rates map[string]float64) {
	a := &API{jobs: svc, regions: regions}
	actions := map[string]cloudapi.HandlerFunc{
		"CreateMigrateJob":        a.createMigrateJob,
		"ModifyMigrateJob":        a.modifyMigrateJob,
		"DeleteMigrateJob":        a.deleteMigrateJob,
		"DescribeMigrateJobs":     a.describeMigrateJobs,
		"CreateMigrateCheckJob":   a.createMigrateCheckJob,
		"DescribeMigrateCheckJob": a.describeMigrateCheckJob,
		"StartMigrateJob":         a.startMigrateJob,
		"StopMigrateJob":          a.stopMigrateJob,
		"CompleteMigrateJob":      a.completeMigrateJob,
		"DescribeRegionConf":      a.describeRegionConf,
	}
	for name, h := range actions {
		rate := Rates[name]
		if r, ok := rates[name]; ok {
			rate = r
		}
		srv.Handle(name, rate, wrap(h))
	}
	// The other actions of dts 2018-03-30 exist in the SDKs; a client that
	// calls one learns that opendts does not offer it, not that it does not
	// exist.
	for _, name := range otherActions {
		srv.Handle(name, 0, func(context.Context, *cloudapi.Request) (any, error) {
			return nil, cloudapi.Errorf(codeUnsupportedOper, "opendts serves the data-migration actions of dts 2018-03-30; %s (data sync or subscription) is not offered.", name)
		})
	}
}

var otherActions = []string{
	"ActivateSubscribe", "CreateSubscribe", "CreateSyncCheckJob", "CreateSyncJob",
	"DeleteSyncJob", "DescribeAsyncRequestInfo", "DescribeSubscribeConf", "DescribeSubscribes",
	"DescribeSyncCheckJob", "DescribeSyncJobs", "IsolateSubscribe", "ModifySubscribeAutoRenewFlag",
	"ModifySubscribeConsumeTime", "ModifySubscribeName", "ModifySubscribeObjects",
	"ModifySubscribeVipVport", "ModifySyncJob", "OfflineIsolatedSubscribe", "ResetSubscribe",
	"StartSyncJob", "SwitchDrToMaster",
}

// wrap maps every error a handler returns onto the API's codes.
func wrap(h cloudapi.HandlerFunc) cloudapi.HandlerFunc {
	return func(ctx context.Context, req *cloudapi.Request) (any, error) {
		out, err := h(ctx, req)
		if id := req.Params.Text("JobId"); errors.Is(err, jobs.ErrNotFound) && id != "" && len(id) <= 64 {
			// Name the id: a script that loops over jobs must know which
			// one is gone.
			return nil, cloudapi.Errorf(codeJobNotExist, "The migration job %q does not exist.", id)
		}
		if err != nil {
			return nil, toAPIError(err)
		}
		return out, nil
	}
}

// toAPIError is the one place where domain errors become API codes.
func toAPIError(err error) error {
	if e := cloudapi.AsError(err); e != nil {
		return e
	}
	var statusErr *jobs.StatusError
	var dupErr *jobs.DuplicateError
	var invErr *jobs.InvalidError
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return cloudapi.Errorf(codeJobNotExist, "The migration job does not exist.")
	case errors.As(err, &statusErr):
		return cloudapi.Errorf(codeNotAllow, "%s.", capitalize(statusErr.Error()))
	case errors.As(err, &dupErr):
		return cloudapi.Errorf(codeDuplicateJob, "Migration jobs conflict: %s.", dupErr.Error())
	case errors.As(err, &invErr):
		code := cloudapi.CodeInvalidParameter
		if invErr.Value {
			code = cloudapi.CodeInvalidParamValue
		}
		return cloudapi.Errorf(code, "%s.", capitalize(invErr.Message))
	case errors.Is(err, jobs.ErrStoreUnavailable):
		return cloudapi.Errorf(codeDatabaseError, "opendts's job store failed: %s. Nothing was changed; retry once etcd has a majority of its members up again.", storeCause(err))
	case errors.Is(err, jobs.ErrStore):
		return cloudapi.Errorf(codeDatabaseError, "opendts's job store failed: %s. Check the disk and the data directory; nothing was changed.", storeCause(err))
	case errors.Is(err, jobs.ErrTooManyUnused):
		return cloudapi.Errorf(codeMaxUnusedJobs, "%s.", capitalize(err.Error()))
	case errors.Is(err, jobs.ErrShuttingDown):
		return cloudapi.Errorf(cloudapi.CodeServiceUnavailable, "opendts is shutting down; retry when it is back.")
	}
	return err
}

// storeCause is what a DBA can use of a store failure: the operation and
// the database's own words (disk full, locked, read-only), without
// ErrStore's text, which the message already says, and without the JSON
// decoder's, which names Go types: a job it cannot read is damaged.
func storeCause(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	if errors.As(err, &typeErr) || errors.As(err, &syntaxErr) {
		return "a stored job is damaged and cannot be read"
	}
	return strings.TrimPrefix(err.Error(), jobs.ErrStore.Error()+": ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func missing(name string) error {
	return cloudapi.Errorf(cloudapi.CodeMissingParameter, "The request is missing a required parameter `%s`.", name)
}

func jobIDOf(req *cloudapi.Request) (string, error) {
	var in jobIDRequest
	if err := req.Params.Decode(&in); err != nil {
		return "", err
	}
	if in.JobId == nil || *in.JobId == "" {
		return "", missing("JobId")
	}
	req.Annotate("job_id", *in.JobId)
	return *in.JobId, nil
}
