package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tool finds one of PostgreSQL's client programs on opendts's host:
// Config.BinDir, else the newest /usr/lib/postgresql/N/bin (Debian keeps
// each major version's programs there), else PATH.
func (e *Engine) tool(name string) (string, error) {
	if e.cfg.BinDir != "" {
		p := filepath.Join(e.cfg.BinDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found in %s", name, e.cfg.BinDir)
		}
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return dirMajor(dirs[i]) > dirMajor(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on opendts's host: install PostgreSQL's client programs (Debian: apt-get install postgresql-client-15, or the version of the source or newer)", name)
	}
	return p, nil
}

func dirMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

var versionRE = regexp.MustCompile(`(\d+)(?:\.(\d+))?`)

// toolVersion runs "path --version" and returns the major version and the
// text it printed.
func toolVersion(ctx context.Context, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return 0, "", fmt.Errorf("%s --version: %w", path, err)
	}
	text := strings.TrimSpace(string(out))
	m := versionRE.FindStringSubmatch(text)
	if m == nil {
		return 0, text, fmt.Errorf("%s --version printed %q, no version", path, text)
	}
	major, _ := strconv.Atoi(m[1])
	return major, text, nil
}
