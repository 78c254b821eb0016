package engine

import "strings"

// Selection decides which source objects a job moves. It is the one rule
// the check, the copy and the change stream share, so that they never
// disagree about a table: names compare exactly, or without regard to
// case where the source server folds case (MySQL's lower_case_table_names
// 1 or 2), as the server itself would.
type Selection struct {
	whole   bool
	fold    bool
	objects []ObjectSelection
}

// NewSelection is spec's selection on a source that folds case or not.
func NewSelection(spec Spec, foldCase bool) Selection {
	return Selection{
		whole:   spec.MigrateObject != MigrateObjectSelected,
		fold:    foldCase,
		objects: spec.Objects,
	}
}

// Same reports whether two names of one kind name the same object.
func (s Selection) Same(a, b string) bool {
	return a == b || (s.fold && strings.EqualFold(a, b))
}

// WholeInstance reports whether everything but system objects moves.
func (s Selection) WholeInstance() bool { return s.whole }

// WholeDatabase reports whether every object of a database moves.
func (s Selection) WholeDatabase(db string) bool {
	if s.whole {
		return true
	}
	for _, o := range s.objects {
		if s.Same(o.Database, db) && o.Schema == "" && len(o.Tables) == 0 {
			return true
		}
	}
	return false
}

// Table reports whether a table moves (schema "" for families without
// schemas).
func (s Selection) Table(db, schema, table string) bool {
	if s.whole {
		return true
	}
	for _, o := range s.objects {
		if !s.Same(o.Database, db) {
			continue
		}
		if o.Schema != "" && !s.Same(o.Schema, schema) {
			continue
		}
		if len(o.Tables) == 0 {
			return true
		}
		for _, t := range o.Tables {
			if s.Same(t, table) {
				return true
			}
		}
	}
	return false
}
