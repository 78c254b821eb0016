package jobs

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opendts/opendts/internal/engine"
)

// ExpectTimeLayout is the API's time format.
const ExpectTimeLayout = "2006-01-02 15:04:05"

var (
	databaseTypes = []string{"mysql", "mariadb", "percona", "postgresql", "redis", "mongodb", "sqlserver"}
	accessTypes   = []string{"extranet", "cvm", "dcg", "vpncloud", "vpnselfbuild", "cdb", "ccn"}
)

const (
	maxNameLength = 128
	maxTags       = 50
)

// validate checks a whole job, as created or as modified: every
// enumeration, every combination the API forbids, and the object selection.
// It returns the parsed selection for later use.
func (s *Service) validate(j *Job) ([]engine.ObjectSelection, error) {
	if strings.TrimSpace(j.Name) == "" {
		return nil, invalid("JobName", "JobName must not be empty")
	}
	if utf8.RuneCountInString(j.Name) > maxNameLength {
		return nil, invalidValue("JobName", "JobName is longer than %d characters", maxNameLength)
	}
	if err := validateOption(&j.Option, s.now()); err != nil {
		return nil, err
	}
	for _, side := range []struct{ param, value string }{{"SrcDatabaseType", j.SrcDatabaseType}, {"DstDatabaseType", j.DstDatabaseType}} {
		if !slices.Contains(databaseTypes, side.value) {
			return nil, invalidValue(side.param, "%s %q is not one of %s", side.param, side.value, strings.Join(databaseTypes, ", "))
		}
	}
	if engine.FamilyOf(j.SrcDatabaseType) != engine.FamilyOf(j.DstDatabaseType) {
		return nil, invalidValue("DstDatabaseType", "a %s source cannot migrate into a %s target: source and target must be of one family (mysql, mariadb and percona are one)", j.SrcDatabaseType, j.DstDatabaseType)
	}
	if engine.FamilyOf(j.SrcDatabaseType) == engine.FamilyRedis && engine.MigrateType(j.Option.MigrateType) == engine.MigrateStructure {
		return nil, invalidValue("MigrateOption.MigrateType", "MigrateOption.MigrateType 1 (structure only) means nothing for Redis, whose keys carry their own structure: use 2 (full) or 3 (full + incremental)")
	}
	if err := s.validateSrc(j.SrcAccessType, &j.Src, j.SrcDatabaseType, "SrcInfo"); err != nil {
		return nil, err
	}
	for i := range j.SrcInfoMulti {
		if err := s.validateSrc(j.SrcAccessType, &j.SrcInfoMulti[i], j.SrcDatabaseType, fmt.Sprintf("SrcInfoMulti.%d", i)); err != nil {
			return nil, err
		}
	}
	if err := s.validateDst(j); err != nil {
		return nil, err
	}
	switch j.SrcNodeType {
	case "", "simple", "single", "cluster":
	default:
		return nil, invalidValue("SrcNodeType", "SrcNodeType must be simple or cluster, not %q", j.SrcNodeType)
	}
	if err := validateTags(j.Tags); err != nil {
		return nil, err
	}
	objects, normal, err := ParseDatabaseInfo(j.SrcDatabaseType, j.DatabaseInfo)
	if err != nil {
		return nil, err
	}
	j.DatabaseInfo = normal
	if engine.FamilyOf(j.SrcDatabaseType) == engine.FamilyRedis {
		if err := redisDatabases(objects); err != nil {
			return nil, err
		}
	}
	switch engine.MigrateObject(j.Option.MigrateObject) {
	case engine.MigrateObjectSelected:
		if len(objects) == 0 {
			return nil, invalid("DatabaseInfo", "MigrateOption.MigrateObject is 2 (chosen objects): DatabaseInfo must name at least one database, like [{\"Database\":\"db1\",\"Table\":[\"t1\"]}]")
		}
	case engine.MigrateObjectWholeInstance:
		if len(objects) > 0 {
			return nil, invalid("DatabaseInfo", "MigrateOption.MigrateObject is 1 (whole instance) but DatabaseInfo chooses objects; set MigrateObject to 2 or leave DatabaseInfo empty")
		}
	}
	return objects, nil
}

func validateOption(o *MigrateOption, now time.Time) error {
	switch o.RunMode {
	case 1:
	case 2:
		if o.ExpectTime == "" {
			return invalid("MigrateOption.ExpectTime", "MigrateOption.ExpectTime is required when RunMode is 2 (scheduled), as yyyy-mm-dd hh:mm:ss")
		}
		if _, err := time.ParseInLocation(ExpectTimeLayout, o.ExpectTime, now.Location()); err != nil {
			return invalid("MigrateOption.ExpectTime", "MigrateOption.ExpectTime %q is not a time of the form yyyy-mm-dd hh:mm:ss", o.ExpectTime)
		}
	default:
		return invalidValue("MigrateOption.RunMode", "MigrateOption.RunMode must be 1 (run now) or 2 (scheduled), not %d", o.RunMode)
	}
	if o.MigrateType < 1 || o.MigrateType > 3 {
		return invalidValue("MigrateOption.MigrateType", "MigrateOption.MigrateType must be 1 (structure), 2 (full) or 3 (full + incremental), not %d", o.MigrateType)
	}
	if o.MigrateObject < 1 || o.MigrateObject > 2 {
		return invalidValue("MigrateOption.MigrateObject", "MigrateOption.MigrateObject must be 1 (whole instance) or 2 (chosen objects), not %d", o.MigrateObject)
	}
	if o.ConsistencyType < 1 || o.ConsistencyType > 5 {
		return invalidValue("MigrateOption.ConsistencyType", "MigrateOption.ConsistencyType must be 1 to 5, not %d", o.ConsistencyType)
	}
	if o.IsOverrideRoot != 0 && o.IsOverrideRoot != 1 {
		return invalidValue("MigrateOption.IsOverrideRoot", "MigrateOption.IsOverrideRoot must be 0 or 1, not %d", o.IsOverrideRoot)
	}
	if o.IsOverrideRoot == 1 && (engine.MigrateObject(o.MigrateObject) != engine.MigrateObjectWholeInstance || engine.MigrateType(o.MigrateType) == engine.MigrateStructure) {
		return invalid("MigrateOption.IsOverrideRoot", "MigrateOption.IsOverrideRoot must be 0 when migrating chosen objects or structure only: the root account moves only with a whole instance's data")
	}
	p := o.ConsistencyParams
	params := []struct {
		name  string
		value int
	}{{"SelectRowsPerTable", p.SelectRowsPerTable}, {"TablesSelectAll", p.TablesSelectAll}, {"TablesSelectCount", p.TablesSelectCount}}
	for _, f := range params {
		required := o.ConsistencyType == 3
		if (required || f.value != 0) && (f.value < 1 || f.value > 100) {
			what := "must be"
			if required {
				what = "is required with ConsistencyType 3 (sampling) and must be"
			}
			return invalidValue("MigrateOption.ConsistencyParams."+f.name, "MigrateOption.ConsistencyParams.%s %s a percentage from 1 to 100, not %d", f.name, what, f.value)
		}
	}
	if o.ExternParams != "" && o.ExternParams != "[]" && !json.Valid([]byte(o.ExternParams)) {
		return invalid("MigrateOption.ExternParams", "MigrateOption.ExternParams must be JSON text")
	}
	return nil
}

func validAccessType(param, value string) error {
	if !slices.Contains(accessTypes, value) {
		return invalidValue(param, "%s %q is not one of %s", param, value, strings.Join(accessTypes, ", "))
	}
	return nil
}

func validAddress(prefix, ip string, port int) error {
	if ip == "" {
		return invalid(prefix+".Ip", "%s.Ip is required for this access type (the database's address)", prefix)
	}
	if net.ParseIP(ip) == nil && !validHostName(ip) {
		return invalidValue(prefix+".Ip", "%s.Ip %q is neither an IP address nor a host name", prefix, ip)
	}
	if port < 1 || port > 65535 {
		return invalidValue(prefix+".Port", "%s.Port must be from 1 to 65535, not %d", prefix, port)
	}
	return nil
}

func validHostName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (s *Service) validateSrc(accessType string, src *SrcInfo, dbType, prefix string) error {
	if err := validAccessType("SrcAccessType", accessType); err != nil {
		return err
	}
	switch src.Supplier {
	case "", "aliyun", "others":
	default:
		return invalidValue(prefix+".Supplier", "%s.Supplier must be aliyun or others, not %q", prefix, src.Supplier)
	}
	if accessType == "cdb" {
		return s.validateInstance(prefix, src.InstanceId, dbType)
	}
	if err := validAddress(prefix, src.Ip, src.Port); err != nil {
		return err
	}
	// Redis authenticates with a password alone (its default user); a
	// User there names an ACL user.
	if src.User == "" && engine.FamilyOf(dbType) != engine.FamilyRedis {
		return invalid(prefix+".User", "%s.User is required: the account opendts reads the source with", prefix)
	}
	return nil
}

func (s *Service) validateDst(j *Job) error {
	if err := validAccessType("DstAccessType", j.DstAccessType); err != nil {
		return err
	}
	d := &j.Dst
	if d.Region != "" && len(s.cfg.Regions) > 0 && !slices.Contains(s.cfg.Regions, d.Region) {
		return invalidValue("DstInfo.Region", "DstInfo.Region %q is not a region of this opendts (%s)", d.Region, strings.Join(s.cfg.Regions, ", "))
	}
	if d.ReadOnly != 0 && d.ReadOnly != 1 {
		return invalidValue("DstInfo.ReadOnly", "DstInfo.ReadOnly must be 0 or 1, not %d", d.ReadOnly)
	}
	if j.DstAccessType == "cdb" {
		return s.validateInstance("DstInfo", d.InstanceId, j.DstDatabaseType)
	}
	if err := validAddress("DstInfo", d.Ip, d.Port); err != nil {
		return err
	}
	if d.User == "" && engine.FamilyOf(j.DstDatabaseType) != engine.FamilyRedis {
		return invalid("DstInfo.User", "DstInfo.User is required: the account opendts writes the target with")
	}
	return nil
}

func (s *Service) validateInstance(prefix, id, dbType string) error {
	if id == "" {
		return invalid(prefix+".InstanceId", "%s.InstanceId is required when the access type is cdb", prefix)
	}
	inst, err := s.cfg.Catalog.Lookup(id)
	if err != nil {
		return invalidValue(prefix+".InstanceId", "%s.InstanceId %q cannot be resolved: %s", prefix, id, err)
	}
	if engine.FamilyOf(inst.Engine) != engine.FamilyOf(dbType) {
		return invalidValue(prefix+".InstanceId", "%s.InstanceId %q is a %s instance, not %s", prefix, id, inst.Engine, dbType)
	}
	return nil
}

func validateTags(tags []Tag) error {
	if len(tags) > maxTags {
		return invalidValue("Tags", "a job carries at most %d tags, not %d", maxTags, len(tags))
	}
	seen := map[string]bool{}
	for i, t := range tags {
		if t.Key == "" {
			return invalid(fmt.Sprintf("Tags.%d.TagKey", i), "Tags.%d.TagKey must not be empty", i)
		}
		if seen[t.Key] {
			return invalid(fmt.Sprintf("Tags.%d.TagKey", i), "the tag key %q is given twice", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// redisDatabases checks a Redis selection: logical databases by number,
// [{"Database":"0"},{"Database":"3"}], never tables.
func redisDatabases(objects []engine.ObjectSelection) error {
	for i, o := range objects {
		n, err := strconv.Atoi(o.Database)
		if err != nil || n < 0 || strconv.Itoa(n) != o.Database {
			return invalidValue("DatabaseInfo", "DatabaseInfo element %d names database %q: a Redis database is a logical database number, like [{\"Database\":\"0\"},{\"Database\":\"3\"}]", i, o.Database)
		}
		if len(o.Tables) > 0 {
			return invalid("DatabaseInfo", "DatabaseInfo element %d lists tables of database %q: Redis moves whole logical databases", i, o.Database)
		}
	}
	return nil
}
