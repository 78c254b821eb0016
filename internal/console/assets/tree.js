// The object picker: lists the source's databases and tables with the
// opendts extension action DescribeMigrateSourceObjects and writes the
// selection into the DatabaseInfo field.
import { h } from './ui.js';

export function objectPicker(box, { call, dbInfo, source }) {
  const status = h('p', { class: 'muted small', 'aria-live': 'polite', id: 'tree-status' });
  const tree = h('div', { class: 'tree', id: 'tree', hidden: true });
  const load = h('button', { type: 'button', id: 'tree-load' }, 'List the source\'s databases and tables');
  box.replaceChildren(load, status, tree);

  function write() {
    const out = [];
    for (const db of tree.querySelectorAll('li[data-db]')) {
      const dbBox = db.querySelector(':scope > label > input');
      const schemaOf = db.dataset.schema || '';
      const tables = [...db.querySelectorAll('input[data-table]')];
      const picked = tables.filter((t) => t.checked).map((t) => t.dataset.table);
      if (dbBox.checked && (picked.length === tables.length)) {
        out.push(schemaOf ? { Database: db.dataset.db, Schema: schemaOf } : { Database: db.dataset.db });
      } else if (picked.length) {
        out.push(schemaOf ? { Database: db.dataset.db, Schema: schemaOf, Table: picked } : { Database: db.dataset.db, Table: picked });
      }
    }
    dbInfo.value = out.length ? JSON.stringify(out) : '';
  }

  // tickCurrent ticks what DatabaseInfo already selects.
  function tickCurrent() {
    let current;
    try { current = JSON.parse(dbInfo.value || '[]'); } catch { return; }
    if (!Array.isArray(current)) return;
    for (const li of tree.querySelectorAll('li[data-db]')) {
      const sel = current.find((e) => e && e.Database === li.dataset.db && (e.Schema || '') === (li.dataset.schema || '') ||
        (e && e.Database === li.dataset.db && !e.Schema));
      if (!sel) continue;
      const tables = [...li.querySelectorAll('input[data-table]')];
      for (const t of tables) t.checked = !sel.Table || sel.Table.includes(t.dataset.table);
      const box = li.querySelector(':scope > label > input');
      box.checked = tables.every((t) => t.checked);
      box.indeterminate = !box.checked && tables.some((t) => t.checked);
    }
  }

  load.addEventListener('click', async () => {
    status.textContent = 'Connecting to the source…';
    tree.hidden = true;
    try {
      const out = await call('DescribeMigrateSourceObjects', source());
      const groups = out.Objects || [];
      if (!groups.length) { status.textContent = 'The source has no database to migrate.'; return; }
      tree.replaceChildren(h('ul', { role: 'list' }, groups.map((g, i) => {
        const name = g.Schema ? `${g.Database}.${g.Schema}` : g.Database;
        const dbId = `tree-db-${i}`;
        const dbBox = h('input', { type: 'checkbox', id: dbId, 'data-dbbox': name });
        const tables = h('ul', {}, (g.Tables || []).map((t, k) => h('li', {},
          h('label', {}, h('input', { type: 'checkbox', 'data-table': t, id: `${dbId}-t${k}` }), ' ', t))));
        dbBox.addEventListener('change', () => { for (const t of tables.querySelectorAll('input')) t.checked = dbBox.checked; write(); });
        tables.addEventListener('change', () => {
          const all = [...tables.querySelectorAll('input')];
          dbBox.checked = all.length > 0 && all.every((t) => t.checked);
          dbBox.indeterminate = !dbBox.checked && all.some((t) => t.checked);
          write();
        });
        return h('li', { 'data-db': g.Database, 'data-schema': g.Schema || '' },
          h('label', {}, dbBox, ' ', h('strong', {}, name), h('span', { class: 'muted small' }, ` ${(g.Tables || []).length} tables${g.Truncated ? ' (first ones only)' : ''}`)),
          tables);
      })));
      tickCurrent();
      tree.hidden = false;
      const kind = groups[0].Schema ? 'schema' : 'database';
      status.textContent = `${groups.length} ${kind}${groups.length === 1 ? '' : 's'} found. Tick whole databases or single tables.`;
    } catch (e) {
      status.textContent = `Could not list the source's objects: ${e.message}`;
    }
  });
}
