package postgres

// The pre-migration check. Each item is a small type with a Name and a
// Check method, one file per family of items, as in the MySQL engine:
// check_connect.go (connections), check_version.go (servers
// and the client programs on opendts's host), check_privileges.go and
// check_dstpriv.go (both users), check_objects.go (the selection exists,
// nothing is in the way on the target), check_depends.go (what tables
// selected one by one use), check_extensions.go, check_encoding.go, and
// check_tables.go (keys, unlogged tables, large objects, roles,
// read-only), check_incremental.go (what logical replication needs).
// Items read the servers through a checkSide, which keeps one
// connection per database, and the selection resolved on the source
// (check_plan.go), read once for every item.
//
// Items run one after the other: a pgx connection serves one query at a
// time, and each is quick. The check never writes to either server: its
// sessions are read-only (default_transaction_read_only=on) and it runs
// only SELECTs. It never puts a password in a message.

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/opendts/opendts/internal/engine"
)

// checkItem is one check: it looks at the run's servers and gives one
// verdict. An item that needs a side it cannot reach says so in its
// verdict; it never returns an error, so one broken item cannot hide the
// others.
type checkItem interface {
	Name() string
	Check(ctx context.Context, r *checkRun) engine.CheckItem
}

// checkRun is the state of one Check call, shared by its items.
type checkRun struct {
	e        *Engine
	spec     engine.Spec
	src, dst *checkSide
	// plan is the selection resolved on the source.
	plan lazy[*checkPlan]
}

// Check runs the items that apply to spec: the two connections first, since
// every other item depends on them, then the rest. Items are returned in a
// fixed order.
func (e *Engine) Check(ctx context.Context, spec engine.Spec, progress engine.CheckProgress) ([]engine.CheckItem, error) {
	r := &checkRun{
		e:    e,
		spec: spec,
		src:  &checkSide{e: e, name: "source", field: "SrcInfo", ep: spec.Source},
		dst:  &checkSide{e: e, name: "target", field: "DstInfo", ep: spec.Target},
	}
	defer r.src.close()
	defer r.dst.close()

	items := append([]checkItem{connectCheck{r.src}, connectCheck{r.dst}}, checkItemsFor(spec)...)
	results := make([]engine.CheckItem, 0, len(items))
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("postgresql check: %w", err)
		}
		results = append(results, it.Check(ctx, r))
		if progress != nil {
			progress(i+1, len(items))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgresql check: %w", err)
	}
	return results, nil
}

// checkItemsFor lists the items after the connections that apply to spec.
func checkItemsFor(spec engine.Spec) []checkItem {
	var items []checkItem
	items = append(items,
		versionCheck{},
		srcPrivilegeCheck{},
		dstPrivilegeCheck{},
		objectsExistCheck{},
		dstConflictCheck{},
	)
	if hasTableSelections(spec) {
		items = append(items, dependencyCheck{})
	}
	items = append(items,
		extensionCheck{},
		encodingCheck{},
	)
	if spec.MigrateType.Copies() {
		items = append(items, primaryKeyCheck{})
	}
	items = append(items, unloggedTableCheck{})
	if spec.MigrateType.Copies() {
		items = append(items, largeObjectCheck{})
	}
	if spec.MigrateObject != engine.MigrateObjectSelected {
		items = append(items, roleConflictCheck{})
	}
	if spec.MigrateType.Incremental() {
		items = append(items, logicalReplicationCheck{}, replicaIdentityCheck{}, publicationCheck{},
			longTransactionCheck{}, applierRoleCheck{})
	}
	if spec.TargetReadOnly {
		items = append(items, readOnlyCheck{})
	}
	return items
}

// Verdict helpers keep every item's result in the same shape.

func pass(name, format string, args ...any) engine.CheckItem {
	return engine.CheckItem{Name: name, Result: engine.ResultPass, Message: fmt.Sprintf(format, args...)}
}

func warn(name, message, advice string) engine.CheckItem {
	return engine.CheckItem{Name: name, Result: engine.ResultWarning, Message: message, Advice: advice}
}

func fail(name, message, advice string) engine.CheckItem {
	return engine.CheckItem{Name: name, Result: engine.ResultFail, Message: message, Advice: advice}
}

// partly is the verdict of an item that could not look at every database
// of the job: a warning, since what it saw passed.
func partly(name string, unread []string) engine.CheckItem {
	return warn(name, "not every database could be checked: "+strings.Join(unread, "; "),
		"Let the users connect to every database of the job (see SrcPrivilegeCheck and DstPrivilegeCheck), then check again.")
}

// lazy computes a value once, on first use, for every item that needs it.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (l *lazy[T]) get(f func() (T, error)) (T, error) {
	l.once.Do(func() { l.v, l.err = f() })
	return l.v, l.err
}

// listNames shows at most the first 10 names, then how many there are in
// all.
func listNames(names []string) string {
	const shown = 10
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more (%d in all)", strings.Join(names[:shown], ", "), len(names)-shown, len(names))
}

// plainIdent is a name SQL reads as is, without quotes.
var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// reservedWords must be quoted as names: PostgreSQL's reserved keywords
// and those that cannot name a table or a role.
var reservedWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`all analyse analyze and any array as asc asymmetric authorization binary both case
		cast check collate collation column concurrently constraint create cross current_catalog current_date
		current_role current_schema current_time current_timestamp current_user default deferrable desc distinct do
		else end except false fetch for foreign freeze from full grant group having ilike in initially inner intersect
		into is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
		only or order outer overlaps placing primary references returning right select session_user similar
		some symmetric system_user table tablesample then to trailing true union unique user using variadic verbose
		when where window with`) {
		reservedWords[w] = true
	}
}

// shown is db.schema.name for messages and advice, each part quoted only
// where SQL needs it, so that the statements the advice shows run as they
// are.
func shown(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		if plainIdent.MatchString(p) && !reservedWords[p] {
			q[i] = p
		} else {
			q[i] = quoteIdent(p)
		}
	}
	return strings.Join(q, ".")
}
