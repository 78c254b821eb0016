package testpg

import (
	"bytes"
	"context"
	_ "embed"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// fidelitySQL is testdata/fidelity.sql: one of everything issue 12 lists
// under "Structure" and "Rows". Embedded, so that any package's tests can
// load it whatever their working directory.
//
//go:embed testdata/fidelity.sql
var fidelitySQL []byte

// Fidelity is a loaded fidelity data set: the database and the roles it
// grants to and gives objects to.
type Fidelity struct {
	DB string
	// Owner owns a schema, tables, a view and a function; Reader and
	// Writer hold grants, column grants, default privileges and are named
	// by row-level security policies. All three are login roles with the
	// password FidelityPassword.
	Owner, Reader, Writer string
}

// FidelityPassword is the password of the data set's roles.
const FidelityPassword = "fidelity-pw"

// Roles lists the data set's roles.
func (f *Fidelity) Roles() []string { return []string{f.Owner, f.Reader, f.Writer} }

// CreateRoles creates the data set's roles on another server (a target,
// for a migration that does not move roles itself), dropped when the test
// ends. Without them, restoring the data set's grants and owners fails.
func (f *Fidelity) CreateRoles(t testing.TB, s *Server) {
	t.Helper()
	for _, r := range f.Roles() {
		s.Exec(t, "postgres", "CREATE ROLE "+dumpIdent(r)+" LOGIN PASSWORD '"+FidelityPassword+"'")
		t.Cleanup(func() { s.DropRole(r) })
	}
}

// LoadFidelity loads testdata/fidelity.sql into db on s (a database the
// caller created, empty), as the superuser, after creating the three roles
// it names (unique names, dropped when the test ends). It takes a few
// seconds: most of it the 250,000-row table and the several-MB values.
func LoadFidelity(t testing.TB, s *Server, db string) *Fidelity {
	t.Helper()
	f := &Fidelity{
		DB:     db,
		Owner:  s.NewRole(t, "fid_owner", FidelityPassword),
		Reader: s.NewRole(t, "fid_reader", FidelityPassword),
		Writer: s.NewRole(t, "fid_writer", FidelityPassword),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// psql rather than one Exec: it splits the script the way the file is
	// written (dollar quotes, BEGIN ATOMIC bodies), stops at the first
	// error and names its line.
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "psql"), "-X", "-q", "--no-password",
		"-o", "/dev/null", "-v", "ON_ERROR_STOP=1",
		"-v", "owner="+f.Owner, "-v", "reader="+f.Reader, "-v", "writer="+f.Writer, "-v", "dbname="+db,
		"-d", s.SuperURL(db), "-f", "-")
	cmd.Stdin = bytes.NewReader(fidelitySQL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testpg: load testdata/fidelity.sql into %s/%s: %v\n%s", s.Addr(), db, err, out)
	}
	return f
}
