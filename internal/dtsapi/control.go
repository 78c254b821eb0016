package dtsapi

import (
	"context"
	"strconv"

	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/jobs"
)

func (a *API) createMigrateCheckJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	id, err := jobIDOf(req)
	if err != nil {
		return nil, err
	}
	return nil, a.jobs.Check(ctx, id)
}

// describeMigrateCheckJob answers the cloud's fields and, as an opendts
// extension the official SDKs ignore, every check item with its advice.
func (a *API) describeMigrateCheckJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	id, err := jobIDOf(req)
	if err != nil {
		return nil, err
	}
	j, err := a.jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	c := j.Check
	out := struct {
		Status       string
		ErrorCode    int64
		ErrorMessage string
		Progress     string
		CheckFlag    int64
		CheckItems   []checkItemOut
	}{
		Status: c.Status, ErrorCode: int64(c.ErrorCode), ErrorMessage: c.Message,
		Progress: strconv.Itoa(c.Progress), CheckFlag: int64(c.Flag), CheckItems: []checkItemOut{},
	}
	if out.Status == "" {
		out.Status = "unavailable"
	}
	for _, it := range c.Items {
		out.CheckItems = append(out.CheckItems, checkItemOut{Name: it.Name, Result: it.Result, Message: it.Message, Advice: it.Advice})
	}
	return out, nil
}

func (a *API) startMigrateJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	id, err := jobIDOf(req)
	if err != nil {
		return nil, err
	}
	return nil, a.jobs.Start(ctx, id)
}

func (a *API) stopMigrateJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	id, err := jobIDOf(req)
	if err != nil {
		return nil, err
	}
	return nil, a.jobs.Stop(ctx, id)
}

func (a *API) completeMigrateJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	var in completeMigrateJobRequest
	if err := req.Params.Decode(&in); err != nil {
		return nil, err
	}
	if in.JobId == nil || *in.JobId == "" {
		return nil, missing("JobId")
	}
	req.Annotate("job_id", *in.JobId)
	mode := jobs.CompleteWaitForSync
	if in.CompleteMode != nil && *in.CompleteMode != "" {
		mode = *in.CompleteMode
		if mode != jobs.CompleteWaitForSync && mode != jobs.CompleteImmediately {
			return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "CompleteMode must be waitForSync or immediately, not %q.", mode)
		}
	}
	return nil, a.jobs.Complete(ctx, *in.JobId, mode)
}

// regionNames are the display names and areas of the cloud's regions; a
// region opendts serves that is not listed shows its id.
var regionNames = map[string][2]string{
	"ap-guangzhou":     {"华南地区(广州)", "South China"},
	"ap-shanghai":      {"华东地区(上海)", "East China"},
	"ap-beijing":       {"华北地区(北京)", "North China"},
	"ap-chengdu":       {"西南地区(成都)", "Southwest China"},
	"ap-chongqing":     {"西南地区(重庆)", "Southwest China"},
	"ap-nanjing":       {"华东地区(南京)", "East China"},
	"ap-hongkong":      {"港澳台地区(中国香港)", "Hong Kong, Macau and Taiwan (China)"},
	"ap-singapore":     {"亚太东南(新加坡)", "Southeast Asia"},
	"ap-bangkok":       {"亚太东南(曼谷)", "Southeast Asia"},
	"ap-mumbai":        {"亚太南部(孟买)", "South Asia"},
	"ap-seoul":         {"亚太东北(首尔)", "Northeast Asia"},
	"ap-tokyo":         {"亚太东北(东京)", "Northeast Asia"},
	"eu-frankfurt":     {"欧洲地区(法兰克福)", "Europe"},
	"eu-moscow":        {"欧洲地区(莫斯科)", "Europe"},
	"na-ashburn":       {"美国东部(弗吉尼亚)", "North America"},
	"na-siliconvalley": {"美国西部(硅谷)", "North America"},
	"na-toronto":       {"北美地区(多伦多)", "North America"},
}

type regionOut struct {
	RegionName      string
	Region          string
	Area            string
	IsDefaultRegion int64
	Status          int64
}

// describeRegionConf lists the regions this opendts serves, in the SDK's
// SubscribeRegionConf shape; Status 1 is "available", the first region is
// the default.
func (a *API) describeRegionConf(ctx context.Context, req *cloudapi.Request) (any, error) {
	var in emptyRequest
	if err := req.Params.Decode(&in); err != nil {
		return nil, err
	}
	items := make([]regionOut, 0, len(a.regions))
	for i, r := range a.regions {
		name, area := r, ""
		if n, ok := regionNames[r]; ok {
			name, area = n[0], n[1]
		}
		def := int64(0)
		if i == 0 {
			def = 1
		}
		items = append(items, regionOut{RegionName: name, Region: r, Area: area, IsDefaultRegion: def, Status: 1})
	}
	return struct {
		TotalCount int64
		Items      []regionOut
	}{int64(len(items)), items}, nil
}
