package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

const versionName = "VersionCheck"

// versionCheck compares the servers' major versions, and checks the
// client programs opendts runs on its own host: pg_dump reads the source
// (it refuses a server newer than itself) and pg_restore writes its
// archive into the target.
type versionCheck struct{}

func (versionCheck) Name() string { return versionName }

func (versionCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = versionName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	src, err := r.src.serverVersion(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source is PostgreSQL.")
	}
	dst, err := r.dst.serverVersion(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the target is PostgreSQL.")
	}
	srcMajor, dstMajor := majorOf(src), majorOf(dst)
	both := fmt.Sprintf("source PostgreSQL %s, target PostgreSQL %s", versionText(src), versionText(dst))
	// The copy reads pg_attribute.attgenerated, which PostgreSQL 12 added.
	if srcMajor < 12 {
		return fail(n, both+": opendts reads PostgreSQL 12 and later only",
			"Upgrade the source to PostgreSQL 12 or later, or migrate it with pg_dump and pg_restore.")
	}
	if dstMajor < srcMajor {
		return fail(n, fmt.Sprintf("%s: the target is older than the source (%d < %d); a dump of a newer server may not load into an older one", both, dstMajor, srcMajor),
			fmt.Sprintf("Use a target running PostgreSQL %d or later.", srcMajor))
	}
	var tools []string
	for _, t := range []struct {
		name    string
		atLeast int
		why     string
	}{
		{"pg_dump", srcMajor, "the source's"},
		{"pg_restore", max(srcMajor, dstMajor), "the source's and the target's"},
	} {
		path, err := r.e.tool(t.name)
		if err != nil {
			return fail(n, fmt.Sprintf("%s; %s", err, both),
				fmt.Sprintf("Install PostgreSQL's client programs of version %d or later on opendts's host (Debian/Ubuntu: apt-get install postgresql-client-%d), or point the engine's BinDir at them.", t.atLeast, t.atLeast))
		}
		major, text, err := toolVersion(ctx, path)
		if err != nil {
			return fail(n, err.Error(), fmt.Sprintf("Reinstall PostgreSQL's client programs of version %d or later on opendts's host.", t.atLeast))
		}
		if major < t.atLeast {
			return fail(n, fmt.Sprintf("%s: %s (%s) is older than %s major version %d", both, path, text, t.why, t.atLeast),
				fmt.Sprintf("Install PostgreSQL's client programs of version %d or later on opendts's host (Debian/Ubuntu: apt-get install postgresql-client-%d); opendts uses the newest /usr/lib/postgresql/N/bin.", t.atLeast, t.atLeast))
		}
		tools = append(tools, fmt.Sprintf("%s %s", path, strings.TrimPrefix(text, t.name+" ")))
	}
	return pass(n, "%s; on opendts's host: %s", both, strings.Join(tools, ", "))
}

// majorOf is the major version of a server_version_num: 150004 is 15,
// 90624 is 9 (9.6's major is 9.6, but anything below 12 is refused).
func majorOf(num int) int { return num / 10000 }

// versionText writes a server_version_num as people do: 15.4, 9.6.24.
func versionText(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100)
}
