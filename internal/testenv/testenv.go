// Package testenv is what the test harnesses of every database family
// (internal/testdb, internal/testpg, internal/testredis) share: finding
// their scripts at the module root, running them so that the servers they
// start stop with the test binary, and picking free loopback ports.
// Imported by test helpers only.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Script is the path of scripts/name at the module root, found by walking
// up from the test's working directory (its package directory) to go.mod.
func Script(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", name), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// RunScript runs a harness script with bash. The servers it starts stop
// by themselves once this process is gone, even without its cleanup (a
// panic, a test timeout): OPENDTS_TESTDB_OWNER tells the script's watcher
// which process to outlive. A failure names the script and its subcommand
// (the first argument) only, since later ones may hold a password, and
// carries what the script printed.
func RunScript(timeout time.Duration, script string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "OPENDTS_TESTDB_OWNER="+strconv.Itoa(os.Getpid()))
	out, err := cmd.CombinedOutput()
	if err != nil {
		sub := ""
		if len(args) > 0 {
			sub = " " + args[0]
		}
		return fmt.Errorf("%s%s: %w\n%s", filepath.Base(script), sub, err, out)
	}
	return nil
}

// FreePort is a loopback port nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
