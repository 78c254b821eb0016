package testpg

import (
	"fmt"
	"strings"
)

// unifiedDiff returns the differences between a and b as unified-diff
// hunks (3 lines of context), at most maxDiffLines lines of them, or ""
// when a and b are equal. It is for reading in a test log, not for patch:
// dumps are a few thousand lines, so a plain LCS over what lies between
// the common head and tail is enough; past a size it stops looking for the
// best alignment and shows the two middles.
func unifiedDiff(a, b []string, nameA, nameB string) string {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	if head == len(a) && head == len(b) {
		return ""
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	ma, mb := a[head:len(a)-tail], b[head:len(b)-tail]
	var ops []diffOp
	if len(ma)*len(mb) <= 4_000_000 {
		ops = lcsOps(ma, mb)
	} else {
		for _, l := range ma {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, diffOp{'+', l})
		}
	}
	// The whole script, common lines included, with each line's numbers.
	type line struct {
		op     byte
		text   string
		ia, ib int // 1-based line numbers before the line
	}
	var all []line
	ia, ib := 0, 0
	emit := func(op byte, text string) {
		all = append(all, line{op, text, ia, ib})
		if op != '+' {
			ia++
		}
		if op != '-' {
			ib++
		}
	}
	for _, l := range a[:head] {
		emit(' ', l)
	}
	for _, o := range ops {
		emit(o.op, o.text)
	}
	for _, l := range a[len(a)-tail:] {
		emit(' ', l)
	}

	const context = 3
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
	shown, omitted := 0, 0
	for i := 0; i < len(all); {
		if all[i].op == ' ' {
			i++
			continue
		}
		// A hunk: from context lines before the change to context lines
		// after the last change that is no more than 2*context away.
		start := max(0, i-context)
		end := i
		for j := i; j < len(all); j++ {
			if all[j].op != ' ' {
				end = j
			} else if j-end > 2*context {
				break
			}
		}
		stop := min(len(all), end+context+1)
		if shown >= maxDiffLines {
			for _, l := range all[start:stop] {
				if l.op != ' ' {
					omitted++
				}
			}
			i = stop
			continue
		}
		na, nb := 0, 0
		for _, l := range all[start:stop] {
			if l.op != '+' {
				na++
			}
			if l.op != '-' {
				nb++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", all[start].ia+1, na, all[start].ib+1, nb)
		for _, l := range all[start:stop] {
			if shown >= maxDiffLines {
				if l.op != ' ' {
					omitted++
				}
				continue
			}
			fmt.Fprintf(&out, "%c%s\n", l.op, l.text)
			shown++
		}
		i = stop
	}
	if omitted > 0 {
		fmt.Fprintf(&out, "... and %d more changed lines\n", omitted)
	}
	return strings.TrimSuffix(out.String(), "\n")
}

type diffOp struct {
	op   byte // ' ', '-' (a only), '+' (b only)
	text string
}

// lcsOps is the edit script from a to b that keeps a longest common
// subsequence, removals before additions within a change.
func lcsOps(a, b []string) []diffOp {
	n, m := len(a), len(b)
	// l[i][j]: LCS length of a[i:] and b[j:].
	l := make([][]int32, n+1)
	for i := range l {
		l[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i++
			j++
		case i < n && (j == m || l[i+1][j] >= l[i][j+1]):
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	return ops
}
