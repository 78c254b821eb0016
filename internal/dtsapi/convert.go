package dtsapi

import (
	"strconv"
	"time"

	"github.com/opendts/opendts/internal/jobs"
)

func setStr(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

func setInt(dst *int, src *int64) {
	if src != nil {
		*dst = int(*src)
	}
}

// applyOption sets on o what the client sent.
func applyOption(o *jobs.MigrateOption, in *migrateOptionIn) {
	if in == nil {
		return
	}
	setInt(&o.RunMode, in.RunMode)
	setStr(&o.ExpectTime, in.ExpectTime)
	setInt(&o.MigrateType, in.MigrateType)
	setInt(&o.MigrateObject, in.MigrateObject)
	setInt(&o.ConsistencyType, in.ConsistencyType)
	setInt(&o.IsOverrideRoot, in.IsOverrideRoot)
	setStr(&o.ExternParams, in.ExternParams)
	if p := in.ConsistencyParams; p != nil {
		setInt(&o.ConsistencyParams.SelectRowsPerTable, p.SelectRowsPerTable)
		setInt(&o.ConsistencyParams.TablesSelectAll, p.TablesSelectAll)
		setInt(&o.ConsistencyParams.TablesSelectCount, p.TablesSelectCount)
	}
}

// applySrc sets on s what the client sent; a Password not sent keeps the
// stored one.
func applySrc(s *jobs.SrcInfo, in *srcInfoIn) {
	if in == nil {
		return
	}
	setStr(&s.AccessKey, in.AccessKey)
	setStr(&s.Ip, in.Ip)
	setInt(&s.Port, in.Port)
	setStr(&s.User, in.User)
	setStr(&s.Password, in.Password)
	setStr(&s.RdsInstanceId, in.RdsInstanceId)
	setStr(&s.CvmInstanceId, in.CvmInstanceId)
	setStr(&s.UniqDcgId, in.UniqDcgId)
	setStr(&s.VpcId, in.VpcId)
	setStr(&s.SubnetId, in.SubnetId)
	setStr(&s.UniqVpnGwId, in.UniqVpnGwId)
	setStr(&s.InstanceId, in.InstanceId)
	setStr(&s.Region, in.Region)
	setStr(&s.Supplier, in.Supplier)
	setStr(&s.CcnId, in.CcnId)
	setStr(&s.EngineVersion, in.EngineVersion)
}

func applyDst(d *jobs.DstInfo, in *dstInfoIn) {
	if in == nil {
		return
	}
	setStr(&d.InstanceId, in.InstanceId)
	setStr(&d.Region, in.Region)
	setStr(&d.Ip, in.Ip)
	setInt(&d.Port, in.Port)
	setInt(&d.ReadOnly, in.ReadOnly)
	setStr(&d.User, in.User)
	setStr(&d.Password, in.Password)
}

func srcList(in []srcInfoIn) []jobs.SrcInfo {
	if in == nil {
		return nil
	}
	out := make([]jobs.SrcInfo, len(in))
	for i := range in {
		applySrc(&out[i], &in[i])
	}
	return out
}

// timeText formats a time as the API does; unset is 0000-00-00 00:00:00.
func timeText(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "0000-00-00 00:00:00"
	}
	return t.In(loc).Format(jobs.ExpectTimeLayout)
}

func optionOut(o jobs.MigrateOption) migrateOptionOut {
	extern := o.ExternParams
	if extern == "" {
		extern = "[]"
	}
	return migrateOptionOut{
		RunMode: int64(o.RunMode), ExpectTime: o.ExpectTime, MigrateType: int64(o.MigrateType),
		MigrateObject: int64(o.MigrateObject), ConsistencyType: int64(o.ConsistencyType),
		IsOverrideRoot: int64(o.IsOverrideRoot), ExternParams: extern,
		ConsistencyParams: consistencyParamsOut{
			SelectRowsPerTable: int64(o.ConsistencyParams.SelectRowsPerTable),
			TablesSelectAll:    int64(o.ConsistencyParams.TablesSelectAll),
			TablesSelectCount:  int64(o.ConsistencyParams.TablesSelectCount),
		},
	}
}

func srcOut(s jobs.SrcInfo) srcInfoOut {
	return srcInfoOut{
		AccessKey: s.AccessKey, Ip: s.Ip, Port: int64(s.Port), User: s.User,
		RdsInstanceId: s.RdsInstanceId, CvmInstanceId: s.CvmInstanceId, UniqDcgId: s.UniqDcgId,
		VpcId: s.VpcId, SubnetId: s.SubnetId, UniqVpnGwId: s.UniqVpnGwId, InstanceId: s.InstanceId,
		Region: s.Region, Supplier: s.Supplier, CcnId: s.CcnId, EngineVersion: s.EngineVersion,
	}
}

func jobOut(j *jobs.Job, loc *time.Location) migrateJobInfo {
	out := migrateJobInfo{
		JobId: j.ID, JobName: j.Name, MigrateOption: optionOut(j.Option),
		SrcDatabaseType: j.SrcDatabaseType, SrcAccessType: j.SrcAccessType, SrcInfo: srcOut(j.Src),
		DstDatabaseType: j.DstDatabaseType, DstAccessType: j.DstAccessType,
		DstInfo: dstInfoOut{
			InstanceId: j.Dst.InstanceId, Region: j.Dst.Region, Ip: j.Dst.Ip, Port: int64(j.Dst.Port),
			ReadOnly: int64(j.Dst.ReadOnly), User: j.Dst.User,
		},
		DatabaseInfo: j.DatabaseInfo,
		CreateTime:   timeText(j.CreateTime, loc),
		StartTime:    timeText(j.StartTime, loc),
		EndTime:      timeText(j.EndTime, loc),
		Status:       int64(j.Status),
		Detail: detailOut{
			StepAll: int64(j.Detail.StepAll), StepNow: int64(j.Detail.StepNow),
			Progress:            strconv.Itoa(j.Detail.Progress),
			CurrentStepProgress: strconv.Itoa(j.Detail.CurrentStepProgress),
			MasterSlaveDistance: j.Detail.MasterSlaveDistance,
			SecondsBehindMaster: j.Detail.SecondsBehindMaster,
			StepInfo:            []stepOut{},
			WaitingForWorker:    j.Detail.WaitingForWorker,
		},
		ErrorInfo:    []errorInfoOut{},
		Tags:         []tagItemOut{},
		SrcNodeType:  j.SrcNodeType,
		SrcInfoMulti: []srcInfoOut{},
	}
	if out.DatabaseInfo == "" {
		out.DatabaseInfo = "[]"
	}
	for _, st := range j.Detail.Steps {
		start := ""
		if !st.StartTime.IsZero() {
			start = timeText(st.StartTime, loc)
		}
		out.Detail.StepInfo = append(out.Detail.StepInfo, stepOut{
			StepNo: int64(st.No), StepName: st.Name, StepId: st.ID, Status: int64(st.Status), StartTime: start,
		})
	}
	for _, e := range j.ErrorInfo {
		out.ErrorInfo = append(out.ErrorInfo, errorInfoOut{ErrorLog: e.ErrorLog, HelpDoc: e.HelpDoc})
	}
	for _, t := range j.Tags {
		out.Tags = append(out.Tags, tagItemOut{TagKey: t.Key, TagValue: t.Value})
	}
	for _, m := range j.SrcInfoMulti {
		out.SrcInfoMulti = append(out.SrcInfoMulti, srcOut(m))
	}
	out.ConsistencyResult = []consistencyOut{}
	for _, v := range j.Verification {
		keys := v.FirstKeys
		if keys == nil {
			keys = []string{}
		}
		out.ConsistencyResult = append(out.ConsistencyResult, consistencyOut{
			Database: v.Database, Table: v.Table, Method: v.Method, Rows: v.Rows,
			Differences: v.Differences, FirstKeys: keys, Detail: v.Detail,
		})
	}
	out.CopyProgress, out.TableProgress = copyOut(j.Detail.Copy)
	out.Node = j.Node
	return out
}

// copyOut shows a job's copy progress; a job whose copy has not reported
// shows zeros, an unknown ETA and no tables.
func copyOut(c *jobs.CopyProgress) (copyProgressOut, []tableProgressOut) {
	tables := []tableProgressOut{}
	if c == nil {
		return copyProgressOut{EtaSeconds: -1}, tables
	}
	for _, t := range c.Tables {
		tables = append(tables, tableProgressOut{
			Database: t.Database, Schema: t.Schema, Table: t.Table,
			RowsDone: t.RowsDone, RowsTotal: t.RowsTotal, RowsPerSecond: t.RowsPerSecond, Status: t.Status,
		})
	}
	return copyProgressOut{
		RowsDone: c.RowsDone, RowsTotal: c.RowsTotal, RowsPerSecond: c.RowsPerSecond, EtaSeconds: c.EtaSeconds,
		TablesDone: int64(c.TablesDone), TablesTotal: int64(c.TablesTotal),
	}, tables
}
