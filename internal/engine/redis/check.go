package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// checkRun is the state of one Check: the two sides and what several
// items read.
type checkRun struct {
	e        *Engine
	spec     engine.Spec
	src, dst *goredis.Client
	srcErr   error
	dstErr   error
	srcInfo  map[string]string
	dstInfo  map[string]string
}

type checkItem struct {
	name string
	// needs says which sides the item reads: 's', 'd' or both.
	needs string
	run   func(r *checkRun, ctx context.Context) engine.CheckItem
}

// Check connects to both sides and runs every item; it writes nothing
// but sets one source setting to the value it already has (the probe of
// CONFIG SET for ExternParams).
func (e *Engine) Check(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
	r := &checkRun{e: e, spec: spec, src: e.client(spec.Source, 0), dst: e.client(spec.Target, 0)}
	defer r.src.Close()
	defer r.dst.Close()
	r.srcInfo, r.srcErr = info(ctx, r.src, "everything")
	r.dstInfo, r.dstErr = info(ctx, r.dst, "everything")
	items := []checkItem{
		{"ConnectDBCheck", "s", func(r *checkRun, _ context.Context) engine.CheckItem {
			return r.connect("source", spec.Source, r.srcErr)
		}},
		{"ConnectDBCheck", "d", func(r *checkRun, _ context.Context) engine.CheckItem {
			return r.connect("target", spec.Target, r.dstErr)
		}},
		{"ClusterCheck", "sd", (*checkRun).cluster},
		{"VersionCheck", "sd", (*checkRun).version},
		{"SrcPrivilegeCheck", "s", (*checkRun).srcPrivilege},
		{"DstPrivilegeCheck", "d", (*checkRun).dstPrivilege},
		{"SourceObjectsCheck", "sd", (*checkRun).databases},
		{"DstEmptyCheck", "d", (*checkRun).dstEmpty},
		{"DstMemoryCheck", "sd", (*checkRun).memory},
		{"ModuleCheck", "sd", (*checkRun).modules},
		{"ExternParamsCheck", "s", (*checkRun).extern},
	}
	if spec.TargetReadOnly {
		items = append(items, checkItem{"ReadOnlyPrivilegeCheck", "d", func(*checkRun, context.Context) engine.CheckItem {
			return warn("Keep the applications off the target until the migration completes.",
				"DstInfo.ReadOnly is 1, but Redis has no read-only switch for ordinary users that lets the replication writes through: opendts leaves the target writable")
		}})
	}
	out := make([]engine.CheckItem, 0, len(items))
	for i, it := range items {
		var res engine.CheckItem
		switch {
		case i >= 2 && strings.Contains(it.needs, "s") && r.srcErr != nil,
			i >= 2 && strings.Contains(it.needs, "d") && r.dstErr != nil:
			res = engine.CheckItem{Result: engine.ResultNotRun, Message: "not run: a server it needs was not reached (see ConnectDBCheck)"}
		default:
			res = it.run(r, ctx)
		}
		res.Name = it.name
		out = append(out, res)
		if progress != nil {
			progress(i+1, len(items))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("redis check: %w", ctx.Err())
		}
	}
	return out, nil
}

func pass(format string, a ...any) engine.CheckItem {
	return engine.CheckItem{Result: engine.ResultPass, Message: fmt.Sprintf(format, a...)}
}

func fail(advice, format string, a ...any) engine.CheckItem {
	return engine.CheckItem{Result: engine.ResultFail, Message: fmt.Sprintf(format, a...), Advice: advice}
}

func warn(advice, format string, a ...any) engine.CheckItem {
	return engine.CheckItem{Result: engine.ResultWarning, Message: fmt.Sprintf(format, a...), Advice: advice}
}

func who(ep engine.Endpoint) string {
	if ep.User == "" {
		return "the default user"
	}
	return "user " + strconv.Quote(ep.User)
}

func (r *checkRun) connect(role string, ep engine.Endpoint, err error) engine.CheckItem {
	if err == nil {
		return pass("connected to the %s %s as %s", role, ep.Address(), who(ep))
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		return fail("Check the Password (and the User, for an ACL user) given for the "+role+".", "the %s %s refused the credentials of %s", role, ep.Address(), who(ep))
	case strings.Contains(msg, "NOPERM"):
		return fail("Grant the user +info (or +@all) on the "+role+".", "%s may not run INFO on the %s %s", who(ep), role, ep.Address())
	}
	return fail("Check the "+role+"'s address and port, that it runs, and that opendts's host may reach it (firewall, bind, protected-mode).", "cannot reach the %s %s: %v", role, ep.Address(), err)
}

func (r *checkRun) cluster(ctx context.Context) engine.CheckItem {
	srcC, dstC := r.srcInfo["cluster_enabled"] == "1", r.dstInfo["cluster_enabled"] == "1"
	if !srcC && !dstC {
		return pass("source and target are standalone servers")
	}
	dbs, err := selection(r.spec)
	if err == nil && !dbs.all && (len(dbs.dbs) != 1 || dbs.dbs[0] != 0) {
		return fail(`Select database 0 only: [{"Database":"0"}].`, "a Redis cluster has database 0 only, and DatabaseInfo selects %s", joinInts(dbs.dbs))
	}
	if !srcC {
		for k := range r.srcInfo {
			if db, err := strconv.Atoi(strings.TrimPrefix(k, "db")); err == nil && db != 0 && strings.HasPrefix(k, "db") && keyspace(r.srcInfo, db) > 0 {
				return fail(`Select database 0 only ([{"Database":"0"}]) or move those keys into database 0 first.`,
					"the target is a cluster, which has database 0 only, and the source holds keys in database %d", db)
			}
		}
	}
	from := map[bool]string{true: "a cluster (each master read as its own replica)", false: "a standalone server"}[srcC]
	into := map[bool]string{true: "a cluster (each key to the master of its slot; the change stream in one transaction a slot)", false: "a standalone server"}[dstC]
	return pass("database 0 from %s into %s", from, into)
}

// versionOf is major, minor of redis_version.
func versionOf(v string) (int, int) {
	f := strings.SplitN(v, ".", 3)
	if len(f) < 2 {
		return 0, 0
	}
	a, _ := strconv.Atoi(f[0])
	b, _ := strconv.Atoi(f[1])
	return a, b
}

func (r *checkRun) version(ctx context.Context) engine.CheckItem {
	sv, dv := r.srcInfo["redis_version"], r.dstInfo["redis_version"]
	sa, sb := versionOf(sv)
	da, db := versionOf(dv)
	if da < sa || da == sa && db < sb {
		return fail("Use a target of the source's version or newer: an older Redis cannot load the newer one's encodings (RESTORE refuses them).",
			"the target runs Redis %s, older than the source's %s", dv, sv)
	}
	if sa < 2 || sa == 2 && sb < 8 {
		return fail("Upgrade the source to Redis 2.8 or newer.", "the source runs Redis %s, which has no PSYNC", sv)
	}
	return pass("source Redis %s, target Redis %s", sv, dv)
}

// srcPrivilege probes what a replica sends before PSYNC: a user without
// the replication commands is refused there.
func (r *checkRun) srcPrivilege(ctx context.Context) engine.CheckItem {
	c, err := dial(ctx, r.spec.Source, r.e.cfg.DialTimeout)
	if err != nil {
		return fail("Check the source's credentials.", "cannot connect to the source: %v", err)
	}
	defer c.Close()
	if _, err := c.do("REPLCONF", "capa", "eof"); err != nil {
		return fail("Grant "+who(r.spec.Source)+" the replication commands on the source (ACL SETUSER <user> +psync +replconf +sync, or +@all); a managed Redis may need SYNC/PSYNC enabled by its provider.",
			"the source refused REPLCONF to %s: %v", who(r.spec.Source), err)
	}
	if r.spec.Source.User != "" {
		if _, err := c.do("ACL", "DRYRUN", r.spec.Source.User, "PSYNC", "?", "-1"); err != nil && strings.Contains(err.Error(), "not allowed") {
			return fail("Grant "+who(r.spec.Source)+" +psync on the source.", "%s may not run PSYNC on the source", who(r.spec.Source))
		}
	}
	return pass("%s may replicate from the source (REPLCONF accepted)", who(r.spec.Source))
}

func (r *checkRun) dstPrivilege(ctx context.Context) engine.CheckItem {
	user := r.spec.Target.User
	if user == "" {
		user = "default"
	}
	var denied []string
	for _, cmd := range [][]any{{"RESTORE", "k", "0", "x"}, {"MULTI"}, {"HSET", "k", "f", "v"}, {"FLUSHDB"}, {"FUNCTION", "LOAD", "x"}} {
		args := append([]any{"ACL", "DRYRUN", user}, cmd...)
		res, err := r.dst.Do(ctx, args...).Text()
		if err != nil {
			// ACL DRYRUN itself may be denied (or the server older than
			// 7.0): the first write tells then.
			if strings.Contains(err.Error(), "NOPERM") || strings.Contains(err.Error(), "unknown") {
				return pass("the target's permissions for %s could not be read (ACL DRYRUN unavailable); a refused write fails the migration with its reason", who(r.spec.Target))
			}
			return warn("", "reading the target's permissions: %v", err)
		}
		if res != "OK" {
			denied = append(denied, fmt.Sprint(cmd[0]))
		}
	}
	if len(denied) > 0 {
		return fail("Grant "+who(r.spec.Target)+" write commands on the target (ACL SETUSER <user> +@write +multi +exec +select +restore +flushdb +function, or +@all).",
			"%s may not run %s on the target", who(r.spec.Target), strings.Join(denied, ", "))
	}
	return pass("%s may write to the target", who(r.spec.Target))
}

// selectedDBs lists the databases the job moves that exist on the source.
func (r *checkRun) selectedDBs(ctx context.Context) ([]int, int, error) {
	dbs, err := selection(r.spec)
	if err != nil {
		return nil, 0, err
	}
	n, err := databases(ctx, r.src)
	if err != nil {
		return nil, 0, err
	}
	return dbs.list(n), n, nil
}

func (r *checkRun) databases(ctx context.Context) engine.CheckItem {
	sel, n, err := r.selectedDBs(ctx)
	if err != nil {
		return fail(`Select logical databases by number: DatabaseInfo [{"Database":"0"},{"Database":"3"}].`, "%v", err)
	}
	dn, err := databases(ctx, r.dst)
	if err != nil {
		return fail("", "CONFIG GET databases on the target: %v", err)
	}
	for _, db := range sel {
		if db >= n {
			return fail("Select databases the source has (0 to "+strconv.Itoa(n-1)+").", "the source has no database %d (it has %d)", db, n)
		}
		if db >= dn {
			return fail("Raise the target's databases setting (redis.conf; needs a restart) or select fewer databases.", "the target has no database %d (it has %d)", db, dn)
		}
	}
	return pass("databases %s are selected", joinInts(sel))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// keyspace reads the key counts of INFO keyspace ("db3:keys=5,...").
func keyspace(in map[string]string, db int) int64 {
	v := in["db"+strconv.Itoa(db)]
	for _, f := range strings.Split(v, ",") {
		if k, n, ok := strings.Cut(f, "="); ok && k == "keys" {
			x, _ := strconv.ParseInt(n, 10, 64)
			return x
		}
	}
	return 0
}

func (r *checkRun) dstEmpty(ctx context.Context) engine.CheckItem {
	sel, _, err := r.selectedDBs(ctx)
	if err != nil {
		return engine.CheckItem{Result: engine.ResultNotRun, Message: "not run: the selection is not valid (see SourceObjectsCheck)"}
	}
	ext, _ := parseExtern(r.spec.ExternParams)
	var busy []string
	counts := func(db int) int64 { return keyspace(r.dstInfo, db) }
	if r.dstInfo["cluster_enabled"] == "1" {
		// Every master holds part of database 0.
		sel = []int{0}
		var total int64
		nodes, _ := r.e.masters(ctx, r.spec.Target)
		for _, n := range nodes {
			c := r.e.client(n, 0)
			total += c.DBSize(ctx).Val()
			own, _ := c.Keys(ctx, "opendts:{*").Result()
			total -= int64(len(own))
			c.Close()
		}
		counts = func(int) int64 { return total }
	}
	for _, db := range sel {
		n := counts(db)
		if db == 0 && n > 0 && r.dstInfo["cluster_enabled"] != "1" {
			// opendts's own checkpoints do not count.
			own, _ := r.dst.Keys(ctx, "opendts:{*").Result()
			n -= int64(len(own))
		}
		if n > 0 {
			busy = append(busy, fmt.Sprintf("database %d holds %d keys", db, n))
		}
	}
	if len(busy) == 0 {
		return pass("the selected databases of the target are empty")
	}
	switch ext.WriteMode {
	case writeOverwrite:
		return warn("", "%s; ExternParams WriteMode overwrite: the source's keys replace those of the same name, the others stay", strings.Join(busy, "; "))
	case writeClear:
		return warn("", "%s; ExternParams WriteMode clearData: they are emptied when the migration starts", strings.Join(busy, "; "))
	}
	return fail(`Empty those databases of the target, or set ExternParams {"WriteMode":"overwrite"} (replace keys of the same name) or {"WriteMode":"clearData"} (empty them first).`,
		"the target is not empty: %s", strings.Join(busy, "; "))
}

func (r *checkRun) memory(ctx context.Context) engine.CheckItem {
	used, _ := strconv.ParseInt(r.srcInfo["used_memory"], 10, 64)
	max, _ := strconv.ParseInt(r.dstInfo["maxmemory"], 10, 64)
	policy := r.dstInfo["maxmemory_policy"]
	if max > 0 && max < used+used/10 {
		return fail("Raise the target's maxmemory (CONFIG SET maxmemory) above the source's used memory with room to spare.",
			"the target's maxmemory is %d bytes, the source uses %d", max, used)
	}
	if max > 0 && policy != "noeviction" {
		return warn("Set the target's maxmemory-policy to noeviction for the migration, or make sure maxmemory is far above the data.",
			"the target evicts keys (maxmemory-policy %s) when it reaches maxmemory %d bytes: keys could be lost on the target", policy, max)
	}
	return pass("the source uses %d bytes; the target's maxmemory is %s (policy %s)", used, limitText(max), policy)
}

func limitText(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func moduleNames(ctx context.Context, c *goredis.Client) ([]string, error) {
	res, err := c.Do(ctx, "MODULE", "LIST").Slice()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range res {
		fields, _ := m.([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if fmt.Sprint(fields[i]) == "name" {
				out = append(out, fmt.Sprint(fields[i+1]))
			}
		}
	}
	return out, nil
}

func (r *checkRun) modules(ctx context.Context) engine.CheckItem {
	sm, err := moduleNames(ctx, r.src)
	if err != nil {
		return warn("", "cannot list the source's modules: %v", err)
	}
	dm, err := moduleNames(ctx, r.dst)
	if err != nil {
		return warn("", "cannot list the target's modules: %v", err)
	}
	var missing []string
	for _, m := range sm {
		if !slices.Contains(dm, m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return fail("Load the same modules on the target (loadmodule in redis.conf): its keys of those types cannot be restored otherwise.",
			"the source has modules the target lacks: %s", strings.Join(missing, ", "))
	}
	if len(sm) == 0 {
		return pass("the source loads no modules")
	}
	return pass("the target loads the source's modules: %s", strings.Join(sm, ", "))
}

// extern checks ExternParams and that the source takes CONFIG SET, by
// setting repl-timeout to the value it has.
func (r *checkRun) extern(ctx context.Context) engine.CheckItem {
	p, err := parseExtern(r.spec.ExternParams)
	if err != nil {
		return fail("Give ExternParams as JSON, like {\"ReplBacklogSize\":512,\"WriteMode\":\"overwrite\"}.", "%v", err)
	}
	cur, err := r.src.ConfigGet(ctx, "repl-timeout").Result()
	if err == nil {
		err = r.src.ConfigSet(ctx, "repl-timeout", cur["repl-timeout"]).Err()
	}
	if err != nil {
		var advice = "Allow CONFIG SET for " + who(r.spec.Source) + " on the source (ACL +config), or a managed Redis's parameters page: opendts raises repl-backlog-size and the replica output buffer during the sync."
		if errors.Is(err, context.Canceled) {
			advice = ""
		}
		return fail(advice, "the source refused CONFIG for %s: %v", who(r.spec.Source), err)
	}
	return pass("the source takes CONFIG SET; opendts will set %s during the sync and restore them after", settingsText(p))
}

func settingsText(p externParams) string {
	s := p.settings(map[string]string{})
	keys := make([]string, 0, len(s))
	for k, v := range s {
		keys = append(keys, k+" "+v)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}
