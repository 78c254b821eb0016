package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

// serverVersion is what VERSION() says, split into the parts compared.
type serverVersion struct {
	raw     string
	mariadb bool
	major   int
	minor   int
	patch   int
}

func (v serverVersion) flavor() string {
	if v.mariadb {
		return "MariaDB"
	}
	return "MySQL"
}

// String is "MariaDB 10.11.6": flavor and number, without distro suffixes.
func (v serverVersion) String() string {
	return fmt.Sprintf("%s %d.%d.%d", v.flavor(), v.major, v.minor, v.patch)
}

// atLeast reports whether v is major.minor or newer.
func (v serverVersion) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

// parseVersion reads VERSION() of MySQL ("8.0.36", "5.7.44-log"), Percona
// ("8.0.35-27") and MariaDB ("10.11.6-MariaDB-0+deb12u1-log", and the
// "5.5.5-10.1.48-MariaDB" form some proxies pass on).
func parseVersion(raw string) (serverVersion, error) {
	v := serverVersion{raw: raw, mariadb: strings.Contains(strings.ToLower(raw), "mariadb")}
	s := raw
	if v.mariadb {
		s = strings.TrimPrefix(s, "5.5.5-")
	}
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return v, fmt.Errorf("unrecognised server version %q", raw)
	}
	nums := []*int{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		if i >= len(nums) {
			break
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("unrecognised server version %q: %w", raw, err)
		}
		*nums[i] = n
	}
	return v, nil
}

// serverVersion asks the side once for VERSION().
func (s *side) serverVersion(ctx context.Context) (serverVersion, error) {
	return s.version.get(func() (serverVersion, error) {
		var raw string
		if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&raw); err != nil {
			return serverVersion{}, fmt.Errorf("read the %s version: %w", s.name, err)
		}
		return parseVersion(raw)
	})
}

const versionName = "VersionCheck"

type versionCheck struct{}

func (versionCheck) Name() string { return versionName }

func (versionCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	if res, bad := unreachable(versionName, r.src, r.dst); bad {
		return res
	}
	src, err := r.src.serverVersion(ctx)
	if err != nil {
		return warn(versionName, err.Error(), "Check that the source is MySQL, MariaDB or Percona.")
	}
	dst, err := r.dst.serverVersion(ctx)
	if err != nil {
		return warn(versionName, err.Error(), "Check that the target is MySQL, MariaDB or Percona.")
	}
	return compareVersions(src, dst)
}

// compareVersions decides whether what the source holds will load on the
// target. A major version here is major.minor (MySQL 5.7, 8.0, 8.4;
// MariaDB 10.6, 10.11, 11.4): patch releases do not change the SQL.
//
//   - Same flavour: the target must not be older than the source, since an
//     older server lacks syntax and types the newer one writes.
//   - MySQL 5.x into MariaDB 10.2 or later: MariaDB forked from MySQL 5.5
//     and still reads 5.x's SQL, so this passes.
//   - MySQL 8 into MariaDB: the two have drifted (utf8mb4_0900 collations,
//     functional indexes, roles, caching_sha2 accounts), so a warning; the
//     charset item catches the collations for real.
//   - MariaDB into MySQL: MariaDB-only features (sequences, system-versioned
//     tables, INET6/UUID columns, Aria tables) have no MySQL form, so a
//     warning whatever the numbers.
func compareVersions(src, dst serverVersion) engine.CheckItem {
	const n = versionName
	both := fmt.Sprintf("source %s, target %s", src, dst)
	if !src.atLeast(5, 5) {
		return fail(n, both+": opendts reads MySQL 5.5 / MariaDB 5.5 and later only",
			"Upgrade the source, or migrate it with mysqldump.")
	}
	switch {
	case src.mariadb == dst.mariadb:
		if !dst.atLeast(src.major, src.minor) {
			return fail(n, fmt.Sprintf("%s: the target is older than the source (%d.%d < %d.%d)",
				both, dst.major, dst.minor, src.major, src.minor),
				fmt.Sprintf("Use a target running %s %d.%d or later.", src.flavor(), src.major, src.minor))
		}
	case !src.mariadb && dst.mariadb:
		if src.major >= 8 {
			return warn(n, both+": MySQL 8 features (utf8mb4_0900 collations, functional indexes, roles, caching_sha2 accounts) may not load on MariaDB",
				"Check that the source uses none of them, or migrate into MySQL 8 or later.")
		}
		if !dst.atLeast(10, 2) {
			return warn(n, both+": MariaDB before 10.2 lacks parts of MySQL 5.7 (JSON, generated columns)",
				"Use MariaDB 10.2 or later as the target.")
		}
	default:
		return warn(n, both+": MariaDB-only features (sequences, system-versioned tables, INET6/UUID columns, Aria tables) have no MySQL form",
			"Check that the source uses none of them, or migrate into MariaDB.")
	}
	return pass(n, "%s: compatible", both)
}
