package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/opendts/opendts/internal/engine"
)

// chunk is one unit of the copy: a range of one table's rows, copied in
// one target transaction with its mark.
type chunk struct {
	ID     int
	DB     string
	Schema string
	Table  string
	// Lo and Hi bound an integer key range [Lo, Hi); nil is unbounded.
	Key    string `json:",omitempty"`
	Lo, Hi *int64 `json:",omitempty"`
	// Blocks chunks cover heap blocks [BlockLo, BlockHi) by ctid
	// (BlockHi < 0: to the end).
	Blocks           bool  `json:",omitempty"`
	BlockLo, BlockHi int64 `json:",omitempty"`
	// Whole chunks are a table in one piece.
	Whole bool `json:",omitempty"`
	// Rows is the planner's estimate, for the tables' progress; Bytes the
	// chunk's share of its table's size with TOAST, for the job's
	// progress and the order of the work (a table of few wide rows is
	// much work for few rows).
	Rows  int64
	Bytes int64 `json:",omitempty"`
}

// weight is a chunk's share of the copy's work.
func (c chunk) weight() int64 { return max(c.Bytes, c.Rows, 1) }

func (c chunk) ref() engine.TableRef {
	return engine.TableRef{Database: c.DB, Schema: c.Schema, Table: c.Table}
}

// where is the chunk's row filter, "" for a whole table.
func (c chunk) where() string {
	var conds []string
	switch {
	case c.Key != "":
		if c.Lo != nil {
			conds = append(conds, quoteIdent(c.Key)+" >= "+strconv.FormatInt(*c.Lo, 10))
		}
		if c.Hi != nil {
			conds = append(conds, quoteIdent(c.Key)+" < "+strconv.FormatInt(*c.Hi, 10))
		}
	case c.Blocks:
		if c.BlockLo > 0 {
			conds = append(conds, fmt.Sprintf("ctid >= '(%d,0)'::tid", c.BlockLo))
		}
		if c.BlockHi >= 0 {
			conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::tid", c.BlockHi))
		}
	}
	return strings.Join(conds, " AND ")
}

const blockSize = 8192

// plan splits every table into chunks of about ChunkRows rows, inside the
// snapshot: integer keys by ranges of their values, other tables by ctid
// block ranges. A table of one chunk is copied whole.
func (m *migration) plan(ctx context.Context) ([]chunk, error) {
	var out []chunk
	for _, d := range m.dbs {
		var c *pgx.Conn
		for _, r := range d.Relations {
			rows := r.Rows
			if rows <= 0 && r.Bytes > 0 {
				rows = r.Bytes / 100 // never analyzed: guess from the size
			}
			// Wide rows (TOASTed values) make a chunk of ChunkRows rows
			// too big to share among workers: chunks are also bounded
			// by size.
			n := max((rows+m.e.cfg.ChunkRows-1)/m.e.cfg.ChunkRows, (r.TotalBytes+m.e.cfg.ChunkBytes-1)/m.e.cfg.ChunkBytes)
			base := chunk{DB: d.Name, Schema: r.Ref.Schema, Table: r.Ref.Table}
			if n <= 1 {
				base.Whole, base.Rows, base.Bytes = true, rows, r.TotalBytes
				out = append(out, base)
				continue
			}
			per, perBytes := rows/n, r.TotalBytes/n
			if r.IntKey {
				if c == nil {
					var err error
					if c, err = m.e.connect(ctx, m.spec.Source, "source", d.Name); err != nil {
						return nil, err
					}
					defer closeQuietly(c)
					if err := m.beginInSnapshot(ctx, c, d.Name); err != nil {
						return nil, fmt.Errorf("source %s: %w", d.Name, err)
					}
				}
				var lo, hi *int64
				q := fmt.Sprintf("SELECT min(%[1]s)::int8, max(%[1]s)::int8 FROM ONLY %[2]s", quoteIdent(r.Key[0]), quoteQualified(r.Ref.Schema, r.Ref.Table))
				if err := c.QueryRow(ctx, q).Scan(&lo, &hi); err != nil {
					return nil, fmt.Errorf("source %s: key range of %s: %w", d.Name, r.Ref, err)
				}
				if lo == nil {
					base.Whole = true
					out = append(out, base)
					continue
				}
				bounds := splitKeys(*lo, *hi, n)
				for i := 0; i <= len(bounds); i++ {
					ch := base
					ch.Key, ch.Rows, ch.Bytes = r.Key[0], per, perBytes
					if i > 0 {
						v := bounds[i-1]
						ch.Lo = &v
					}
					if i < len(bounds) {
						v := bounds[i]
						ch.Hi = &v
					}
					out = append(out, ch)
				}
				continue
			}
			pages := max(r.Bytes/blockSize, 1)
			step := (pages + n - 1) / n
			for i := int64(0); i < n; i++ {
				ch := base
				ch.Blocks, ch.Rows, ch.Bytes, ch.BlockLo, ch.BlockHi = true, per, perBytes, i*step, (i+1)*step
				if i == n-1 {
					ch.BlockHi = -1
				}
				out = append(out, ch)
			}
		}
	}
	out = interleave(out)
	for i := range out {
		out[i].ID = i + 1
	}
	return out, nil
}

// interleave orders the chunks so that workers running side by side
// write different tables: writers of one table contend for its last
// pages, its TOAST table's and their indexes' (PostgreSQL's own pg_restore
// and pgcopydb copy a table per worker). Tables go biggest first, one
// chunk of each in turn, weighted so that a big table's chunks are spread
// over the whole copy rather than left for its end.
func interleave(chunks []chunk) []chunk {
	byTable := map[engine.TableRef][]chunk{}
	var order []engine.TableRef
	weight := map[engine.TableRef]int64{}
	for _, ch := range chunks {
		if _, ok := byTable[ch.ref()]; !ok {
			order = append(order, ch.ref())
		}
		byTable[ch.ref()] = append(byTable[ch.ref()], ch)
		weight[ch.ref()] += ch.weight()
	}
	slices.SortStableFunc(order, func(a, b engine.TableRef) int {
		switch {
		case weight[a] > weight[b]:
			return -1
		case weight[a] < weight[b]:
			return 1
		}
		return 0
	})
	// Each table's chunks are due at even steps of its weight: the next
	// chunk is the one whose table has done the smallest share of its
	// work so far (ties to the bigger table).
	done := map[engine.TableRef]int64{}
	out := make([]chunk, 0, len(chunks))
	for len(out) < len(chunks) {
		var pick engine.TableRef
		best := -1.0
		for _, t := range order {
			if len(byTable[t]) == 0 {
				continue
			}
			share := float64(done[t]) / float64(max(weight[t], 1))
			if best < 0 || share < best {
				pick, best = t, share
			}
		}
		ch := byTable[pick][0]
		byTable[pick] = byTable[pick][1:]
		done[pick] += ch.weight()
		out = append(out, ch)
	}
	return out
}

// Copy copies every chunk not yet committed, then sets the sequences. A
// source that restarts takes the snapshots with it: the copy goes on in a
// new round, from new snapshots, as a resumed run does.
func (m *migration) Copy(ctx context.Context, report engine.CopyReport) error {
	if m.snaps == nil && m.state.Planned {
		m.state.Resumed++
		m.e.cfg.Logger.Info("resuming the copy from a new snapshot: the first one ended with the run that took it",
			"job_id", m.spec.JobID, "resumed", m.state.Resumed)
	}
	retryable := func(err error) bool { return errors.Is(err, errSnapshotLost) || transient(err) }
	err := m.Retry().Do(ctx, "copy", retryable, func() error {
		err := m.copyRound(ctx, report)
		if errors.Is(err, errSnapshotLost) || transient(err) {
			m.closeSnapshots()
			m.state.Resumed++
			m.e.cfg.Logger.Warn("the copy lost its snapshot (the source went away): it goes on from a new one",
				"job_id", m.spec.JobID, "err", err)
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := m.setSequences(ctx); err != nil {
		return err
	}
	m.closeSnapshots()
	report.Copied(100)
	return nil
}

// copyRound copies what is left with this round's snapshots.
func (m *migration) copyRound(ctx context.Context, report engine.CopyReport) error {
	if err := m.takeSnapshots(ctx); err != nil {
		return err
	}
	if !m.state.Planned {
		plan, err := m.plan(ctx)
		if err != nil {
			return err
		}
		m.state.Plan, m.state.Planned = plan, true
		if err := m.cp.save(ctx, m.state); err != nil {
			return err
		}
	}
	report.Snapshotted()
	rels := map[engine.TableRef]*relation{}
	for _, d := range m.dbs {
		for _, r := range d.Relations {
			rels[r.Ref] = r
		}
	}
	todo, doneWork, committed, err := m.pending(ctx)
	if err != nil {
		return err
	}
	if err := m.markSince(ctx, todo); err != nil {
		return err
	}
	var total int64
	for _, ch := range m.state.Plan {
		total += ch.weight()
	}
	var copied atomic.Int64
	copied.Store(doneWork)
	progress := func() {
		report.Copied(int(min(100, 100*copied.Load()/max(total, 1))))
	}
	progress()
	tables := newTableTally(m.state.Plan, todo, committed)
	tables.reportAll(report)

	work := make(chan chunk)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		for _, ch := range todo {
			select {
			case work <- ch:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range m.e.cfg.Workers {
		g.Go(func() error {
			w := &copyWorker{m: m}
			defer w.close()
			for ch := range work {
				r := rels[ch.ref()]
				if r == nil {
					return engine.Permanent(fmt.Errorf("source: table %s is gone since the copy was planned", ch.ref()))
				}
				// A slot of the node's budget per chunk: jobs take turns
				// at chunk boundaries.
				release, err := m.e.cfg.Budget.Acquire(gctx, m.spec.JobID)
				if err != nil {
					return err
				}
				var n int64
				err = m.Retry().Do(gctx, "copy "+ch.ref().String(), transient, func() error {
					var err error
					n, err = w.copy(gctx, ch, r)
					if err != nil {
						w.close()
						if gctx.Err() == nil && !m.snapshotsAlive(gctx) {
							return fmt.Errorf("%w (%v)", errSnapshotLost, err)
						}
					}
					return err
				})
				release()
				if err != nil {
					return err
				}
				copied.Add(ch.weight())
				progress()
				report.Table(tables.add(ch, n))
			}
			return nil
		})
	}
	return g.Wait()
}

// pending returns the chunks not committed on the target and the share of
// the work they made. A table split by ctid that was partly copied by an
// earlier snapshot starts again: in a new snapshot rows may have moved
// between blocks, so its committed chunks cannot be trusted to match.
func (m *migration) pending(ctx context.Context) ([]chunk, int64, map[engine.TableRef]int64, error) {
	var todo []chunk
	var doneWork int64
	// committed counts each table's rows already on the target.
	committed := map[engine.TableRef]int64{}
	byDB := map[string][]chunk{}
	for _, ch := range m.state.Plan {
		byDB[ch.DB] = append(byDB[ch.DB], ch)
	}
	for _, d := range m.dbs {
		err := m.withTarget(ctx, d.Name, func(c *pgx.Conn) error {
			done, err := doneChunks(ctx, c, m.spec.JobID, m.fence)
			if err != nil {
				return err
			}
			partial := map[engine.TableRef]bool{}
			for _, ch := range byDB[d.Name] {
				if ch.Blocks {
					if _, ok := done[ch.ID]; !ok {
						partial[ch.ref()] = true
					}
				}
			}
			for _, ch := range byDB[d.Name] {
				if n, ok := done[ch.ID]; ok && !partial[ch.ref()] {
					doneWork += ch.weight()
					committed[ch.ref()] += n
					continue
				}
				todo = append(todo, ch)
			}
			for t := range partial {
				var ids []int
				for _, ch := range byDB[d.Name] {
					if ch.ref() == t {
						ids = append(ids, ch.ID)
					}
				}
				if err := restartTable(ctx, c, m.spec.JobID, m.fence, t, ids); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, nil, err
		}
	}
	return todo, doneWork, committed, nil
}

// tableTally keeps each table's rows committed and chunks left, for the
// per-table progress.
type tableTally struct {
	mu     sync.Mutex
	order  []engine.TableRef
	tables map[engine.TableRef]*engine.TableProgress
	left   map[engine.TableRef]int
}

func newTableTally(plan, todo []chunk, committed map[engine.TableRef]int64) *tableTally {
	t := &tableTally{tables: map[engine.TableRef]*engine.TableProgress{}, left: map[engine.TableRef]int{}}
	for _, ch := range plan {
		p := t.tables[ch.ref()]
		if p == nil {
			p = &engine.TableProgress{Table: ch.ref(), RowsDone: committed[ch.ref()]}
			t.tables[ch.ref()] = p
			t.order = append(t.order, ch.ref())
		}
		p.RowsTotal += ch.Rows
	}
	for _, ch := range todo {
		t.left[ch.ref()]++
	}
	for ref, p := range t.tables {
		p.Done = t.left[ref] == 0
	}
	return t
}

// reportAll tells where every table starts, rows of earlier runs included.
func (t *tableTally) reportAll(report engine.CopyReport) {
	for _, ref := range t.order {
		report.Table(*t.tables[ref])
	}
}

// add counts a committed chunk and returns its table's progress.
func (t *tableTally) add(ch chunk, rows int64) engine.TableProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.tables[ch.ref()]
	p.RowsDone += rows
	t.left[ch.ref()]--
	p.Done = t.left[ch.ref()] <= 0
	return *p
}

// markSince records, before any of them is copied, that the tables of
// todo are read from a later snapshot than the slot's: the change stream
// must not apply the changes before its boundary as if the rows lacked
// them.
func (m *migration) markSince(ctx context.Context, todo []chunk) error {
	if !m.spec.MigrateType.Incremental() {
		return nil
	}
	changed := false
	for _, ch := range todo {
		s := m.snaps[ch.DB]
		if s == nil || uint64(s.lsn) == m.state.SlotLSN {
			continue
		}
		if m.state.Since == nil {
			m.state.Since = map[string]uint64{}
		}
		key := ch.Schema + "." + ch.Table
		if m.state.Since[key] < uint64(s.lsn) {
			m.state.Since[key] = uint64(s.lsn)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return m.cp.save(ctx, m.state)
}

var (
	errSourceFailed  = errors.New("the source stopped sending")
	errTargetStopped = errors.New("the target stopped reading")
)

// copyWorker copies chunks with a source and a target session per
// database, kept between chunks of one database.
type copyWorker struct {
	m       *migration
	db      string
	src     *pgx.Conn
	dst     *pgx.Conn
	started bool
}

func (w *copyWorker) close() {
	closeQuietly(w.src)
	closeQuietly(w.dst)
	w.src, w.dst, w.db = nil, nil, ""
}

func (w *copyWorker) sessions(ctx context.Context, db string) error {
	if w.db == db && w.src != nil && w.dst != nil {
		return nil
	}
	w.close()
	var err error
	if w.src, err = w.m.e.connect(ctx, w.m.spec.Source, "source", db); err != nil {
		return err
	}
	if w.dst, err = w.m.connectTarget(ctx, db); err != nil {
		return err
	}
	w.db = db
	return nil
}

// copy pipes the chunk's rows from the source's COPY TO into the target's
// COPY FROM, unparsed, and commits them with the chunk's mark.
func (w *copyWorker) copy(ctx context.Context, ch chunk, r *relation) (int64, error) {
	if err := w.sessions(ctx, ch.DB); err != nil {
		return 0, err
	}
	cols := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		cols[i] = quoteIdent(c)
	}
	table := quoteQualified(ch.Schema, ch.Table)
	format := "text"
	if r.Binary {
		format = "binary"
	}
	var out string
	if where := ch.where(); where == "" {
		out = fmt.Sprintf("COPY %s (%s) TO STDOUT (FORMAT %s)", table, strings.Join(cols, ", "), format)
	} else {
		out = fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT (FORMAT %s)", strings.Join(cols, ", "), table, where, format)
	}
	in := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT %s", table, strings.Join(cols, ", "), format)
	if err := w.m.beginInSnapshot(ctx, w.src, ch.DB); err != nil {
		return 0, fmt.Errorf("source %s: %w", ch.DB, err)
	}
	defer w.src.Exec(ctx, "ROLLBACK")
	if _, err := w.dst.Exec(ctx, "BEGIN"); err != nil {
		return 0, err
	}
	if ch.Whole {
		// A table copied in one piece is emptied in the transaction that
		// fills it, which lets COPY write its rows frozen: no later vacuum
		// rewrites every page to set hint bits.
		if _, err := w.dst.Exec(ctx, "TRUNCATE ONLY "+table); err != nil {
			w.dst.Exec(ctx, "ROLLBACK")
			return 0, fmt.Errorf("target %s: empty %s: %w", ch.DB, ch.ref(), err)
		}
		in += ", FREEZE"
	}
	in += ")"
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var srcErr error
	wg.Go(func() {
		_, srcErr = w.src.PgConn().CopyTo(ctx, pw, out)
		if srcErr != nil {
			pw.CloseWithError(fmt.Errorf("%w: %w", errSourceFailed, srcErr))
		} else {
			pw.Close()
		}
	})
	tag, dstErr := w.dst.PgConn().CopyFrom(ctx, pr, in)
	pr.CloseWithError(errTargetStopped)
	wg.Wait()
	// When the target fails, the source's error is only the closed pipe:
	// the target's is the cause.
	if dstErr != nil && !errors.Is(dstErr, errSourceFailed) {
		w.dst.Exec(ctx, "ROLLBACK")
		return 0, fmt.Errorf("target %s: write %s: %w", ch.DB, ch.ref(), dstErr)
	}
	if srcErr != nil {
		w.dst.Exec(ctx, "ROLLBACK")
		return 0, fmt.Errorf("source %s: read %s: %w", ch.DB, ch.ref(), srcErr)
	}
	if dstErr != nil {
		w.dst.Exec(ctx, "ROLLBACK")
		return 0, fmt.Errorf("target %s: write %s: %w", ch.DB, ch.ref(), dstErr)
	}
	n := tag.RowsAffected()
	// The mark carries the fence of cluster mode (fence.go).
	q, args := w.m.fence.fold(`INSERT INTO `+markSchema+`.migrate_chunks (job_id, chunk_id, row_count)`, "$1, $2, $3", "", []any{w.m.spec.JobID, ch.ID, n})
	tag, err := w.dst.Exec(ctx, q, args...)
	if err == nil && w.m.fence.folded(tag) {
		w.dst.Exec(ctx, "ROLLBACK")
		return 0, w.m.fence.refused("commit", fmt.Sprintf("chunk %d of %s", ch.ID, ch.ref()), w.m.fence.read(ctx, w.dst))
	}
	if err != nil {
		w.dst.Exec(ctx, "ROLLBACK")
		if sqlState(err) == "23505" {
			// An earlier attempt committed the chunk and lost the reply
			// (the target restarted): its rows are there, these go.
			var done int64
			if err := w.dst.QueryRow(ctx, `SELECT row_count FROM `+markSchema+`.migrate_chunks WHERE job_id = $1 AND chunk_id = $2`, w.m.spec.JobID, ch.ID).Scan(&done); err != nil {
				return 0, fmt.Errorf("target %s: read the mark of chunk %d of %s: %w", ch.DB, ch.ID, ch.ref(), err)
			}
			return done, nil
		}
		return 0, fmt.Errorf("target %s: mark chunk %d of %s: %w", ch.DB, ch.ID, ch.ref(), err)
	}
	if _, err := w.dst.Exec(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("target %s: commit chunk %d of %s: %w", ch.DB, ch.ID, ch.ref(), err)
	}
	return n, nil
}
