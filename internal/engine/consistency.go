package engine

import "hash/crc32"

// ConsistencyType is MigrateOption.ConsistencyType: the check of source
// against target after the data moved.
type ConsistencyType int

// The consistency types, as the API numbers them.
const (
	ConsistencyNone      ConsistencyType = 1
	ConsistencyFull      ConsistencyType = 2
	ConsistencySampled   ConsistencyType = 3
	ConsistencyDiffering ConsistencyType = 4
	ConsistencyNever     ConsistencyType = 5
)

// Verifies reports whether the type asks for a check. 4, the cloud's
// "check the tables found inconsistent before", has no earlier result to
// start from in a fresh job and is taken as 2; 1 and 5 check nothing.
func (c ConsistencyType) Verifies() bool {
	return c == ConsistencyFull || c == ConsistencySampled || c == ConsistencyDiffering
}

// VerifyMethod is how one table is compared.
type VerifyMethod int

// The methods of comparing a table.
const (
	VerifySkip    VerifyMethod = iota // not checked (sampled out)
	VerifyCount                       // row counts only
	VerifyContent                     // rows compared by checksum, on a share of the ranges
)

// VerifyPlan decides how a table is checked: every table by content for
// types 2 and 4; for type 3, TablesSelectAll % of the tables by content
// on SelectRowsPerTable % of their ranges, TablesSelectCount % by row
// count. Tables are chosen by a hash of their name, so a rerun checks the
// same ones. pct is the share of ranges to compare by content.
func VerifyPlan(c ConsistencyType, p ConsistencyParams, table string) (method VerifyMethod, pct int) {
	switch {
	case c != ConsistencySampled:
		return VerifyContent, 100
	case Sampled("all:"+table, p.TablesSelectAll):
		return VerifyContent, p.SelectRowsPerTable
	case Sampled("count:"+table, p.TablesSelectCount):
		return VerifyCount, 0
	}
	return VerifySkip, 0
}

// Sampled picks pct % of names, the same ones every time.
func Sampled(name string, pct int) bool {
	if pct >= 100 {
		return true
	}
	return int(crc32.ChecksumIEEE([]byte(name))%100) < pct
}
