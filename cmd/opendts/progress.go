package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// copyView is what the commands read of the CopyProgress and
// TableProgress extensions (a server without them leaves it zero).
type copyView struct {
	CopyProgress struct {
		RowsDone, RowsTotal, RowsPerSecond, EtaSeconds, TablesDone, TablesTotal int64
	}
	TableProgress []tableView
}

type tableView struct {
	Database, Schema, Table, Status    string
	RowsDone, RowsTotal, RowsPerSecond int64
}

func (t tableView) name() string {
	if t.Schema != "" {
		return t.Database + "." + t.Schema + "." + t.Table
	}
	return t.Database + "." + t.Table
}

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(max(n, -n), 10)
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// perSecond shows a rate with two significant figures past 100, so that a
// line printed per change does not churn with every chunk.
func perSecond(r int64) string {
	step := int64(1)
	for v := r; v >= 100; v /= 10 {
		step *= 10
	}
	return count((r+step/2)/step*step) + " rows/s"
}

// etaText shows EtaSeconds: "" when it cannot be told; rounded to 5 s past
// a minute.
func etaText(s int64) string {
	if s < 0 {
		return ""
	}
	d := time.Duration(s) * time.Second
	if d >= time.Minute {
		d = d.Round(5 * time.Second)
	}
	return d.String()
}

// rowsShare is "done of ~total rows (pct %)": the total is an estimate.
func rowsShare(done, total int64) string {
	s := count(done) + " of ~" + count(total) + " rows"
	if total > 0 {
		s += fmt.Sprintf(" (%d%%)", min(100*done/total, 100))
	}
	return s
}

// showCopy writes a job's copy progress for `opendts job`: the job's rows,
// rate and ETA, and the tables the server lists.
func showCopy(w io.Writer, c copyView) {
	p := c.CopyProgress
	if p.TablesTotal == 0 {
		return
	}
	line := fmt.Sprintf("  copy       %s, %d of %d tables done", rowsShare(p.RowsDone, p.RowsTotal), p.TablesDone, p.TablesTotal)
	if p.TablesDone < p.TablesTotal {
		line += ", " + perSecond(p.RowsPerSecond)
	}
	if eta := etaText(p.EtaSeconds); eta != "" && p.EtaSeconds > 0 {
		line += ", ends in ~" + eta
	}
	fmt.Fprintln(w, line)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range c.TableProgress {
		rate := ""
		if t.Status == "copying" {
			rate = "\t" + perSecond(t.RowsPerSecond)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s%s\n", t.name(), t.Status, rowsShare(t.RowsDone, t.RowsTotal), rate)
	}
	tw.Flush()
	if more := p.TablesTotal - int64(len(c.TableProgress)); more > 0 && len(c.TableProgress) > 0 {
		fmt.Fprintf(w, "    ... and %d more table(s), not listed\n", more)
	}
}

// maxWatchedTables is how many tables being copied `watch` shows under its
// line on a terminal.
const maxWatchedTables = 3

// watchCopy is what `watch` adds while rows are copied: to the line, the
// job's rows and rate; the copy's ETA ("" when the server cannot tell);
// and the tables being copied, a line each (shown on a terminal only).
func watchCopy(c copyView) (add string, eta string, tables []string) {
	p := c.CopyProgress
	if p.TablesTotal == 0 {
		return "", "", nil
	}
	add = fmt.Sprintf("  rows %s/~%s at %s, tables %d/%d", count(p.RowsDone), count(p.RowsTotal), perSecond(p.RowsPerSecond), p.TablesDone, p.TablesTotal)
	if p.EtaSeconds > 0 {
		eta = etaText(p.EtaSeconds)
	}
	for _, t := range c.TableProgress {
		if t.Status != "copying" || len(tables) == maxWatchedTables {
			continue
		}
		tables = append(tables, fmt.Sprintf("    %s  %s, %s", t.name(), rowsShare(t.RowsDone, t.RowsTotal), perSecond(t.RowsPerSecond)))
	}
	return add, eta, tables
}

// redraw draws lines in place of the drawn ones on a terminal (the cursor
// is at the end of the last one drawn) and returns how many it drew.
func redraw(w io.Writer, drawn int, lines []string) int {
	if drawn > 1 {
		fmt.Fprintf(w, "\033[%dA", drawn-1)
	}
	for i, l := range lines {
		if i > 0 {
			fmt.Fprint(w, "\n")
		}
		fmt.Fprintf(w, "\r%s\033[K", l)
	}
	// Lines drawn before and not now are cleared.
	fmt.Fprint(w, "\033[J")
	return len(lines)
}
