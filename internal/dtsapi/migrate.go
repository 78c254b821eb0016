package dtsapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/jobs"
)

func (a *API) createMigrateJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	var in createMigrateJobRequest
	if err := req.Params.Decode(&in); err != nil {
		return nil, err
	}
	required := []struct {
		name string
		sent bool
	}{
		{"JobName", in.JobName != nil},
		{"MigrateOption", in.MigrateOption != nil},
		{"SrcDatabaseType", in.SrcDatabaseType != nil},
		{"SrcAccessType", in.SrcAccessType != nil},
		{"SrcInfo", in.SrcInfo != nil},
		{"DstDatabaseType", in.DstDatabaseType != nil},
		{"DstAccessType", in.DstAccessType != nil},
		{"DstInfo", in.DstInfo != nil},
	}
	for _, r := range required {
		if !r.sent {
			return nil, missing(r.name)
		}
	}
	if in.MigrateOption.RunMode == nil {
		return nil, missing("MigrateOption.RunMode")
	}
	if in.MigrateOption.MigrateType == nil {
		return nil, missing("MigrateOption.MigrateType")
	}
	j := &jobs.Job{
		Name:            *in.JobName,
		SrcDatabaseType: strings.ToLower(*in.SrcDatabaseType),
		SrcAccessType:   *in.SrcAccessType,
		DstDatabaseType: strings.ToLower(*in.DstDatabaseType),
		DstAccessType:   *in.DstAccessType,
		SrcInfoMulti:    srcList(in.SrcInfoMulti),
	}
	applyOption(&j.Option, in.MigrateOption)
	applySrc(&j.Src, in.SrcInfo)
	applyDst(&j.Dst, in.DstInfo)
	setStr(&j.DatabaseInfo, in.DatabaseInfo)
	setStr(&j.SrcNodeType, in.SrcNodeType)
	if in.MigrateOption.MigrateObject == nil {
		// Not sent: a selection means chosen objects, none the whole
		// instance.
		j.Option.MigrateObject = jobs.MigrateObjectWholeInstance
		if d := strings.TrimSpace(j.DatabaseInfo); d != "" && d != "[]" {
			j.Option.MigrateObject = jobs.MigrateObjectSelected
		}
	}
	for i, t := range in.Tags {
		if t.TagKey == nil {
			return nil, missing("Tags." + strconv.Itoa(i) + ".TagKey")
		}
		tag := jobs.Tag{Key: *t.TagKey}
		setStr(&tag.Value, t.TagValue)
		j.Tags = append(j.Tags, tag)
	}
	id, err := a.jobs.Create(ctx, j)
	if err != nil {
		return nil, err
	}
	req.Annotate("job_id", id)
	return struct{ JobId string }{id}, nil
}

func (a *API) modifyMigrateJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	var in modifyMigrateJobRequest
	if err := req.Params.Decode(&in); err != nil {
		return nil, err
	}
	if in.JobId == nil || *in.JobId == "" {
		return nil, missing("JobId")
	}
	req.Annotate("job_id", *in.JobId)
	err := a.jobs.Modify(ctx, *in.JobId, func(j *jobs.Job) error {
		oldSrc := [4]string{j.SrcAccessType, j.Src.Ip, strconv.Itoa(j.Src.Port), j.Src.InstanceId}
		oldDst := [4]string{j.DstAccessType, j.Dst.Ip, strconv.Itoa(j.Dst.Port), j.Dst.InstanceId}
		hadSrcPassword, hadDstPassword := j.Src.Password != "", j.Dst.Password != ""
		setStr(&j.Name, in.JobName)
		oldObject := j.Option.MigrateObject
		applyOption(&j.Option, in.MigrateOption)
		setStr(&j.SrcAccessType, in.SrcAccessType)
		applySrc(&j.Src, in.SrcInfo)
		setStr(&j.DstAccessType, in.DstAccessType)
		applyDst(&j.Dst, in.DstInfo)
		if in.SrcDatabaseType != nil {
			j.SrcDatabaseType = strings.ToLower(*in.SrcDatabaseType)
		}
		if in.DstDatabaseType != nil {
			j.DstDatabaseType = strings.ToLower(*in.DstDatabaseType)
		}
		setStr(&j.SrcNodeType, in.SrcNodeType)
		if in.SrcInfoMulti != nil {
			// Each node keeps its stored password unless a new one is sent.
			old := j.SrcInfoMulti
			j.SrcInfoMulti = make([]jobs.SrcInfo, len(in.SrcInfoMulti))
			for i := range in.SrcInfoMulti {
				if i < len(old) {
					j.SrcInfoMulti[i] = old[i]
				}
				applySrc(&j.SrcInfoMulti[i], &in.SrcInfoMulti[i])
			}
		}
		// A stored password only ever goes to the server it was given for:
		// moving a side elsewhere needs the password sent again.
		newSrc := [4]string{j.SrcAccessType, j.Src.Ip, strconv.Itoa(j.Src.Port), j.Src.InstanceId}
		newDst := [4]string{j.DstAccessType, j.Dst.Ip, strconv.Itoa(j.Dst.Port), j.Dst.InstanceId}
		if newSrc != oldSrc && hadSrcPassword && (in.SrcInfo == nil || in.SrcInfo.Password == nil) {
			return cloudapi.Errorf(cloudapi.CodeInvalidParameter, "The source's address changes: send SrcInfo.Password again (a stored password is only used for the server it was given for).")
		}
		if newDst != oldDst && hadDstPassword && (in.DstInfo == nil || in.DstInfo.Password == nil) {
			return cloudapi.Errorf(cloudapi.CodeInvalidParameter, "The target's address changes: send DstInfo.Password again (a stored password is only used for the server it was given for).")
		}
		switch {
		case in.DatabaseInfo != nil:
			j.DatabaseInfo = *in.DatabaseInfo
		case oldObject == jobs.MigrateObjectSelected && j.Option.MigrateObject == jobs.MigrateObjectWholeInstance:
			// Switching to the whole instance drops the old selection.
			j.DatabaseInfo = "[]"
		}
		return nil
	})
	return nil, err
}

func (a *API) deleteMigrateJob(ctx context.Context, req *cloudapi.Request) (any, error) {
	id, err := jobIDOf(req)
	if err != nil {
		return nil, err
	}
	return nil, a.jobs.Delete(ctx, id)
}

var orderNames = []string{"JobId", "Status", "JobName", "MigrateType", "RunMode", "CreateTime"}

func (a *API) describeMigrateJobs(ctx context.Context, req *cloudapi.Request) (any, error) {
	var in describeMigrateJobsRequest
	if err := req.Params.Decode(&in); err != nil {
		return nil, err
	}
	q := jobs.Query{Limit: 20, Desc: true}
	setStr(&q.JobID, in.JobId)
	setStr(&q.JobName, in.JobName)
	if in.Order != nil && *in.Order != "" {
		found := false
		for _, n := range orderNames {
			if n == *in.Order {
				found = true
			}
		}
		if !found {
			return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "Order must be one of %s, not %q.", strings.Join(orderNames, ", "), *in.Order)
		}
		q.Order = *in.Order
	}
	if in.OrderSeq != nil && *in.OrderSeq != "" {
		switch strings.ToUpper(*in.OrderSeq) {
		case "ASC":
			q.Desc = false
		case "DESC":
			q.Desc = true
		default:
			return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "OrderSeq must be ASC or DESC, not %q.", *in.OrderSeq)
		}
	}
	if in.Offset != nil {
		if *in.Offset < 0 {
			return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "Offset must not be negative, not %d.", *in.Offset)
		}
		q.Offset = int(*in.Offset)
	}
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 100 {
			return nil, cloudapi.Errorf(cloudapi.CodeInvalidParamValue, "Limit must be from 1 to 100, not %d.", *in.Limit)
		}
		q.Limit = int(*in.Limit)
	}
	for i, f := range in.TagFilters {
		if f.TagKey == nil || *f.TagKey == "" {
			return nil, missing("TagFilters." + strconv.Itoa(i) + ".TagKey")
		}
		q.Tags = append(q.Tags, jobs.TagFilter{Key: *f.TagKey, Values: f.TagValue})
	}
	list, total, err := a.jobs.List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := struct {
		TotalCount uint64
		JobList    []migrateJobInfo
	}{TotalCount: uint64(total), JobList: []migrateJobInfo{}}
	for _, j := range list {
		out.JobList = append(out.JobList, jobOut(j, time.Local))
	}
	return out, nil
}
