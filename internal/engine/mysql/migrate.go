package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// migration is one run of a job's migration: the units the driver
// (internal/engine/driver) calls in order.
type migration struct {
	e      *Engine
	spec   engine.Spec
	src    *sql.DB
	dst    *sql.DB
	cp     *checkpoint
	state  *jobState
	schema *schemaMover

	// targetVars are the extra session settings of target connections.
	targetVars map[string]string

	// sel is the job's selection with the source's case rule.
	sel      engine.Selection
	dbs      []string
	wholeDBs map[string]bool
	tables   []object // base tables
	views    []object
	// infos are the base tables' columns, keys and sizes, read once in
	// bulk (metadata.go) for the structure and the copy.
	infos map[string]*tableInfo
}

var _ engine.Migration = (*migration)(nil)

// Open connects to the job's servers and opens its checkpoint on the
// target (see checkpoint.go): a run after a crash or a stop resumes where
// the last one was, skipping the chunks already committed.
func (e *Engine) Open(ctx context.Context, spec engine.Spec) (engine.Migration, error) {
	extern, err := parseExternParams(spec.ExternParams)
	if err != nil {
		return nil, err
	}
	m := &migration{e: e, spec: spec}
	if m.src, err = e.openPool(ctx, spec.Source, "source", e.cfg.Workers+2, nil, false); err != nil {
		return nil, err
	}
	if extern.TargetBinlog == "off" {
		m.targetVars = map[string]string{"sql_log_bin": "0"}
	}
	if m.dst, err = e.openPool(ctx, spec.Target, "target", e.cfg.Workers+2, m.targetVars, false); err != nil {
		m.Close()
		if m.targetVars != nil {
			return nil, fmt.Errorf("%w (ExternParams TargetBinlog off needs SUPER or BINLOG ADMIN for the target user)", err)
		}
		return nil, err
	}
	if m.cp, err = openCheckpoint(ctx, m.dst, spec.JobID, spec.Epoch, e.cfg.Logger, e.cfg.Counters); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close releases the run's connections.
func (m *migration) Close() {
	if m.schema != nil {
		m.schema.close()
	}
	if m.src != nil {
		m.src.Close()
	}
	if m.dst != nil {
		m.dst.Close()
	}
}

// Retry is the engine's retry window, for the driver's stream restarts.
func (m *migration) Retry() engine.RetryPolicy {
	return engine.RetryPolicy{For: m.e.cfg.RetryFor, Logger: m.e.cfg.Logger}
}

// LoadPhase reads the job's state from the target.
func (m *migration) LoadPhase(ctx context.Context) (engine.Phase, error) {
	st, err := m.cp.load(ctx)
	if err != nil {
		return "", err
	}
	if st == nil {
		st = &jobState{Phase: engine.PhaseNew}
	}
	m.state = st
	return st.Phase, nil
}

// SavePhase records the phase reached with the rest of the state.
func (m *migration) SavePhase(ctx context.Context, p engine.Phase) error {
	m.state.Phase = p
	return m.cp.save(ctx, m.state)
}

// Forget drops what an earlier run of the job left.
func (m *migration) Forget(ctx context.Context) error { return m.cp.forget(ctx) }

// Finish keeps only the job's "done" mark (and the read_only to restore).
func (m *migration) Finish(ctx context.Context) error {
	return m.cp.finish(ctx, m.state.ReadOnlyBefore)
}

// Prepare resolves the selection on the source.
func (m *migration) Prepare(ctx context.Context) error {
	var err error
	if m.schema, err = newSchemaMover(ctx, m.src, m.dst, m.e.cfg.Logger, m.cp.fence); err != nil {
		return err
	}
	return m.discover(ctx)
}

// discover resolves the selection on the source.
func (m *migration) discover(ctx context.Context) error {
	s := newSide(sourceRole, m.spec.Source, m.e.cfg)
	s.db = m.src
	inv, err := buildInventory(ctx, s, m.spec)
	if err != nil {
		return err
	}
	if len(inv.missing) > 0 {
		return fmt.Errorf("selected objects do not exist on the source: %s", strings.Join(inv.missing, ", "))
	}
	m.dbs = inv.dbs
	m.sel = inv.sel
	m.wholeDBs = map[string]bool{}
	for _, db := range m.dbs {
		m.wholeDBs[db] = m.sel.WholeDatabase(db)
	}
	for _, o := range inv.objects {
		switch {
		case o.isTable():
			m.tables = append(m.tables, o)
		case o.kind == "VIEW":
			m.views = append(m.views, o)
		default:
			m.e.cfg.Logger.Warn("object kind not migrated", "object", o.String(), "kind", o.kind)
		}
	}
	return nil
}

// Structure creates accounts (whole instance), databases, tables and views.
func (m *migration) Structure(ctx context.Context, progress func(done, total int)) error {
	if m.spec.MigrateObject == engine.MigrateObjectWholeInstance {
		if err := m.schema.moveAccounts(ctx, m.spec.OverrideRoot, false); err != nil {
			return err
		}
	}
	total := len(m.dbs) + len(m.tables) + 1
	done := 0
	tick := func() {
		done++
		progress(done, total)
	}
	for _, db := range m.dbs {
		if err := m.schema.createDatabase(ctx, db); err != nil {
			return err
		}
		tick()
	}
	if err := m.createTables(ctx, tick); err != nil {
		return err
	}
	if err := m.schema.createViews(ctx, m.views); err != nil {
		return err
	}
	tick()
	return nil
}

// Objects creates what must not exist while rows load: the secondary
// indexes, routines (whole databases only), and with withActive the
// triggers (they would fire) and events (they would write).
func (m *migration) Objects(ctx context.Context, withActive bool) error {
	if err := m.addDeferredIndexes(ctx); err != nil {
		return err
	}
	for _, db := range m.dbs {
		if !m.wholeDBs[db] {
			continue
		}
		if err := m.schema.createRoutines(ctx, db); err != nil {
			return err
		}
	}
	if withActive {
		return m.FinalObjects(ctx)
	}
	return nil
}

// FinalObjects creates the triggers of the copied tables and the events of
// whole databases, and grants the moved accounts their privileges now that
// the objects they name exist.
func (m *migration) FinalObjects(ctx context.Context) error {
	if m.spec.MigrateObject == engine.MigrateObjectWholeInstance {
		if err := m.schema.moveAccounts(ctx, m.spec.OverrideRoot, true); err != nil {
			return err
		}
	}
	byDB := map[string]map[string]bool{}
	for _, t := range m.tables {
		if byDB[t.db] == nil {
			byDB[t.db] = map[string]bool{}
		}
		byDB[t.db][t.name] = true
	}
	for _, db := range m.dbs {
		if err := m.schema.createTriggers(ctx, db, byDB[db]); err != nil {
			return err
		}
		if !m.wholeDBs[db] {
			continue
		}
		if err := m.schema.createEvents(ctx, db); err != nil {
			return err
		}
	}
	return nil
}

// selected reports whether the job replicates a table, by the rule the
// check and the copy use (engine.Selection).
func (m *migration) selected(db, table string) bool {
	return !isSystemDB(db) && m.sel.Table(db, "", table)
}

func (m *migration) sourceIsMariaDB(ctx context.Context) bool {
	var v string
	_ = m.src.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	return strings.Contains(strings.ToLower(v), "mariadb")
}

// Copy takes the snapshot, plans the chunks (once: a resumed job keeps
// its plan) and copies those not done yet.
func (m *migration) Copy(ctx context.Context, report engine.CopyReport) error {
	byID, err := m.tableInfos(ctx)
	if err != nil {
		return err
	}
	infos := make([]*tableInfo, 0, len(m.tables))
	for _, o := range m.tables {
		infos = append(infos, byID[tableID(o.db, o.name)])
	}
	spare := spareReaders(infos, m.e.cfg.Workers)
	if spare > 0 {
		m.src.SetMaxOpenConns(m.e.cfg.Workers + 2 + spare)
		m.src.SetMaxIdleConns(m.e.cfg.Workers + 2 + spare)
	}
	snap, err := takeSnapshot(ctx, m.src, m.e.cfg.Workers+spare, infos)
	if err != nil {
		return err
	}
	snap.readers, snap.spare = snap.readers[:m.e.cfg.Workers], snap.readers[m.e.cfg.Workers:]
	defer snap.close()
	binlog := "none"
	if snap.pos != nil {
		binlog = fmt.Sprintf("%s:%d gtid %s", snap.pos.File, snap.pos.Pos, snap.pos.GTID)
	}
	m.e.cfg.Logger.Info("snapshot taken", "job_id", m.spec.JobID, "writes_held", snap.lockHeld, "binlog", binlog, "readers", len(snap.readers)+len(snap.spare))
	resumed := m.state.Plan != nil
	if !resumed {
		m.state.Snapshot = snap.pos
		next := 1
		for _, t := range infos {
			chunks, err := planTable(ctx, snap.readers[0], t, m.e.cfg.ChunkRows, next)
			if err != nil {
				return err
			}
			m.state.Plan = append(m.state.Plan, chunks...)
			next += len(chunks)
		}
		if err := m.cp.save(ctx, m.state); err != nil {
			return err
		}
	}
	done, err := m.cp.doneChunks(ctx)
	if err != nil {
		return err
	}
	if resumed {
		m.state.Resumed++
		if m.spec.MigrateType == engine.MigrateFullAndIncremental && snap.pos == nil {
			return fmt.Errorf("the new snapshot of the resumed copy has no binlog position (does the source user still have REPLICATION CLIENT / BINLOG MONITOR?): without it the rows copied now cannot be reconciled with the binlog")
		}
		if m.spec.MigrateType == engine.MigrateFullAndIncremental {
			m.e.cfg.Logger.Warn("resuming the copy from its checkpoint with a new snapshot; the binlog reconciles the rows copied before", "job_id", m.spec.JobID, "resumed", m.state.Resumed)
			if err := m.rebase(ctx, *snap.pos, done); err != nil {
				return err
			}
		} else {
			m.e.cfg.Logger.Warn("resuming the copy from its checkpoint with a new snapshot: rows changed on the source meanwhile are not reconciled in a full-only job", "job_id", m.spec.JobID, "resumed", m.state.Resumed)
		}
		if err := m.cp.save(ctx, m.state); err != nil {
			return err
		}
	}
	var maxPacket int
	if err := m.dst.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return fmt.Errorf("read the target's max_allowed_packet: %w", err)
	}
	writers, closeWriters, err := m.writerPool(ctx)
	if err != nil {
		return err
	}
	defer closeWriters()
	c := &copier{e: m.e, src: m.src, dst: writers, snap: snap, tables: byID, cp: m.cp,
		maxStmt: min(m.e.cfg.BatchBytes, maxPacket/2), report: report}
	if len(snap.spare) > 0 {
		c.readTables = make([]int, len(snap.readers))
	}
	var estRows int64
	for _, ch := range m.state.Plan {
		estRows += ch.EstRows
	}
	report.Snapshotted()
	stop := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				pct := copyPercent(c.rows.Load(), estRows, c.chunksDone.Load(), int64(len(m.state.Plan)))
				report.Copied(pct)
			}
		}
	}()
	started := time.Now()
	err = c.run(ctx, m.state.Plan, done)
	close(stop)
	<-reported
	if err != nil {
		return err
	}
	m.e.cfg.Logger.Info("rows copied", "job_id", m.spec.JobID, "rows", c.rows.Load(), "bytes", c.bytes.Load(),
		"chunks", len(m.state.Plan), "elapsed", time.Since(started).Round(time.Millisecond))
	return nil
}

// tableInfos reads the base tables' metadata once per run.
func (m *migration) tableInfos(ctx context.Context) (map[string]*tableInfo, error) {
	if m.infos == nil {
		infos, err := loadTableInfos(ctx, m.src, m.tables, m.wholeDBs)
		if err != nil {
			return nil, err
		}
		m.infos = infos
	}
	return m.infos, nil
}

// rebase prepares a full + incremental job's resumed copy, whose chunks
// not done yet are read from a new snapshot at pos, while the binlog is
// applied from the first snapshot's position. A table not started yet is
// copied whole from the new snapshot: its binlog up to pos is skipped. A
// table half done keeps its chunks when replaying the binlog over newer
// rows converges (a key and no other unique or foreign key: changes are
// written by key); otherwise its done chunks are removed in one target
// transaction and it is copied again whole, from the new snapshot. Tables
// linked by foreign keys go together: cascades are not in the binlog, so
// a parent and its children must come from one snapshot.
func (m *migration) rebase(ctx context.Context, pos position, done map[int][2]int64) error {
	var order []string
	byTable := map[string][]chunk{}
	for _, ch := range m.state.Plan {
		id := tableID(ch.DB, ch.Table)
		if _, ok := byTable[id]; !ok {
			order = append(order, id)
		}
		byTable[id] = append(byTable[id], ch)
	}
	finished := func(id string) (doneChunks []chunk, all bool) {
		for _, ch := range byTable[id] {
			if _, ok := done[ch.ID]; ok {
				doneChunks = append(doneChunks, ch)
			}
		}
		return doneChunks, len(doneChunks) == len(byTable[id])
	}
	groups, err := m.foreignKeyGroups(ctx, byTable)
	if err != nil {
		return err
	}
	// A table goes again from the new snapshot when it is not finished,
	// or when a table linked to it by a foreign key is not.
	again := map[string]bool{}
	for _, id := range order {
		if _, all := finished(id); !all {
			again[id] = true
			for _, other := range groups[id] {
				again[other] = true
			}
		}
	}
	if m.state.Since == nil {
		m.state.Since = map[string]position{}
	}
	for _, id := range order {
		if !again[id] {
			continue
		}
		chunks := byTable[id]
		doneChunks, _ := finished(id)
		if len(doneChunks) > 0 {
			t, err := loadCDCTable(ctx, m.dst, chunks[0].DB, chunks[0].Table)
			if err != nil {
				return err
			}
			if !t.serial() {
				continue
			}
			if err := m.uncopy(ctx, t, doneChunks); err != nil {
				return err
			}
			for _, ch := range doneChunks {
				delete(done, ch.ID)
			}
			m.e.cfg.Logger.Info("copying a table again from the new snapshot: replaying its binlog over newer rows would not converge", "job_id", m.spec.JobID, "table", t.String(), "chunks", len(doneChunks))
		}
		m.state.Since[id] = pos
	}
	return nil
}

// foreignKeyGroups maps each planned table linked to others by foreign
// keys (directly or through other tables) to the rest of its group.
func (m *migration) foreignKeyGroups(ctx context.Context, planned map[string][]chunk) (map[string][]string, error) {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		return x
	}
	rows, err := m.dst.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME
		FROM information_schema.REFERENTIAL_CONSTRAINTS`)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys on the target: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var db, name, refDB, refName string
		if err := rows.Scan(&db, &name, &refDB, &refName); err != nil {
			return nil, err
		}
		a, b := byName(planned, db, name), byName(planned, refDB, refName)
		if a == "" || b == "" || a == b {
			continue
		}
		parent[find(a)] = find(b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	members := map[string][]string{}
	for id := range planned {
		r := find(id)
		members[r] = append(members[r], id)
	}
	out := map[string][]string{}
	for _, ids := range members {
		if len(ids) < 2 {
			continue
		}
		for _, id := range ids {
			out[id] = ids
		}
	}
	return out, nil
}

// byName finds a planned table by the name the target gives it, which
// may differ in case (lower_case_table_names differs between the servers).
func byName(planned map[string][]chunk, db, name string) string {
	if id := tableID(db, name); planned[id] != nil {
		return id
	}
	for id := range planned {
		if strings.EqualFold(id, tableID(db, name)) {
			return id
		}
	}
	return ""
}

// uncopy removes copied chunks' rows and their done marks in one target
// transaction.
func (m *migration) uncopy(ctx context.Context, t *cdcTable, chunks []chunk) error {
	tx, err := m.dst.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, ch := range chunks {
		q := "DELETE FROM " + t.String()
		if ch.Where != "" {
			q += " WHERE " + ch.Where
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("remove the rows copied of %s to copy it again: %w", t, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM `"+checkpointDB+"`.`migrate_chunks` WHERE job_id = ? AND chunk_id = ?", m.spec.JobID, ch.ID); err != nil {
			return err
		}
	}
	if err := m.cp.fence.check(ctx, tx, "removing copied chunks"); err != nil {
		return err
	}
	return tx.Commit()
}

// copyPercent blends rows against the estimate (smooth, but estimates can
// be off) with chunks done (exact), never reaching 100 before the end.
func copyPercent(rows, estRows, chunks, totalChunks int64) int {
	var byRows, byChunks float64
	if estRows > 0 {
		byRows = min(float64(rows)/float64(estRows), 1)
	}
	if totalChunks > 0 {
		byChunks = float64(chunks) / float64(totalChunks)
	}
	return min(int(100*max(byRows, byChunks)), 99)
}
