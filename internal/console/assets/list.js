// The job list: filters, one row per job updated in place, and the actions
// each job's status allows.
import { h, badge, STATUSES, MIGRATE_TYPES, ACTIONS, endpoint, runAction, patch } from './ui.js';

export function listView({ main, call, go }) {
  document.title = 'Migration jobs · opendts console';
  const statusSel = h('select', { id: 'filter-status' },
    h('option', { value: 'all' }, 'All statuses'),
    Object.entries(STATUSES).map(([k, s]) => h('option', { value: k }, s.name)));
  const nameInput = h('input', { id: 'filter-name', type: 'search', placeholder: 'part of a name', spellcheck: 'false' });
  const summary = h('p', { id: 'list-summary', class: 'muted', 'aria-live': 'polite' });
  const tbody = h('tbody', { id: 'jobs-body' });
  const errorBox = h('p', { class: 'error', role: 'alert', id: 'list-error' });
  main.replaceChildren(
    h('div', { class: 'heading' },
      h('h1', {}, 'Migration jobs'),
      h('a', { href: '#/new', class: 'button primary', id: 'new-job' }, 'New job')),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('label', { for: 'filter-status' }, 'Status'), statusSel,
      h('label', { for: 'filter-name' }, 'Name'), nameInput),
    errorBox,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'jobs' },
        h('caption', { class: 'sr-only' }, 'Migration jobs, refreshed every 2 seconds'),
        h('thead', {}, h('tr', {},
          ['Job', 'Name', 'Source → target', 'Type', 'Status', 'Step', 'Progress', 'Lag', 'Created', 'Actions']
            .map((c) => h('th', { scope: 'col' }, c)))),
        tbody)),
    summary);

  const rows = new Map(); // JobId -> {tr, cells}
  let last = [];

  function actionsFor(job) {
    return h('div', { class: 'actions' }, ACTIONS.filter((a) => a.at.includes(job.Status) &&
      !(a.id === 'complete' && job.MigrateOption.MigrateType !== 3)).map((a) => {
      if (a.id === 'modify') {
        return h('a', { href: `#/jobs/${encodeURIComponent(job.JobId)}/edit`, class: 'button small', 'data-action': 'modify', 'aria-label': `Modify ${job.JobId}` }, a.label);
      }
      return h('button', {
        type: 'button', class: `small${a.danger ? ' danger' : ''}`, 'data-action': a.id, 'aria-label': `${a.label} ${job.JobId}`,
        onclick: async () => { if (await runAction(call, a, job.JobId)) refresh(); },
      }, a.label);
    }));
  }

  function makeRow(id) {
    const cells = {};
    const tr = h('tr', { 'data-job': id });
    for (const k of ['id', 'name', 'ends', 'type', 'status', 'step', 'progress', 'lag', 'created', 'actions']) {
      cells[k] = h(k === 'id' ? 'th' : 'td', k === 'id' ? { scope: 'row' } : { class: `c-${k}` });
      tr.append(cells[k]);
    }
    return { tr, cells };
  }

  function fill(r, j) {
    const d = j.Detail || {};
    const step = (d.StepInfo || []).find((s) => s.StepNo === d.StepNow);
    patch(r.cells.id, j.JobId, () => h('a', { href: `#/jobs/${encodeURIComponent(j.JobId)}`, class: 'mono' }, j.JobId));
    patch(r.cells.name, j.JobName, () => j.JobName);
    patch(r.cells.ends, [j.SrcDatabaseType, j.SrcAccessType, j.SrcInfo, j.DstDatabaseType, j.DstAccessType, j.DstInfo], () => [
      h('span', { class: 'mono' }, endpoint(j.SrcDatabaseType, j.SrcAccessType, j.SrcInfo)),
      h('span', { 'aria-label': 'to' }, ' → '),
      h('span', { class: 'mono' }, endpoint(j.DstDatabaseType, j.DstAccessType, j.DstInfo))]);
    patch(r.cells.type, j.MigrateOption.MigrateType, (t) => MIGRATE_TYPES[t] || t);
    patch(r.cells.status, j.Status, (s) => badge(s));
    patch(r.cells.step, [step && step.StepName, d.StepNow, d.StepAll], () => step ? [h('span', { class: 'muted' }, `${d.StepNow}/${d.StepAll} `), step.StepName] : '—');
    patch(r.cells.progress, d.Progress, (p) => h('span', { class: 'meter-wrap' },
      h('span', { class: 'meter', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Number(p || 0), 'aria-label': `Progress of ${j.JobId}` },
        h('span', { class: 'fill', 'data-pct': Number(p || 0) })),
      ` ${p || 0}%`));
    const fillEl = r.cells.progress.querySelector('.fill');
    if (fillEl) fillEl.style.width = `${Number(d.Progress || 0)}%`;
    const lagged = [7, 8, 12].includes(j.Status) && j.MigrateOption.MigrateType === 3;
    patch(r.cells.lag, [lagged, d.SecondsBehindMaster, d.MasterSlaveDistance], () => lagged ? `${d.SecondsBehindMaster || 0} s · ${d.MasterSlaveDistance || 0} MB` : '—');
    patch(r.cells.created, j.CreateTime, (t) => t && !t.startsWith('0000') ? [t.slice(0, 10), h('br'), t.slice(11)] : '—');
    patch(r.cells.actions, [j.Status, j.MigrateOption.MigrateType], () => actionsFor(j));
  }

  function render() {
    const st = statusSel.value;
    const shown = last.filter((j) => st === 'all' || String(j.Status) === st);
    const keep = new Set(shown.map((j) => j.JobId));
    for (const [id, r] of rows) {
      if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
    }
    if (shown.length) tbody.querySelector('.empty')?.remove();
    let prev = null;
    for (const j of shown) {
      let r = rows.get(j.JobId);
      if (!r) { r = makeRow(j.JobId); rows.set(j.JobId, r); }
      fill(r, j);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== r.tr) tbody.insertBefore(r.tr, want);
      prev = r.tr;
    }
    if (!shown.length) {
      const text = last.length ? 'No job at this status.' : 'No migration job yet. Create one with “New job”.';
      const empty = tbody.querySelector('.empty') || tbody.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: 10 })));
      if (empty.textContent !== text) empty.firstChild.textContent = text;
    }
  }

  let total = 0;
  async function refresh() {
    const params = { Limit: 100, Order: 'CreateTime', OrderSeq: 'DESC' };
    if (nameInput.value.trim()) params.JobName = nameInput.value.trim();
    const out = await call('DescribeMigrateJobs', params);
    last = out.JobList || [];
    total = out.TotalCount;
    errorBox.textContent = '';
    render();
    const txt = total > last.length ? `Showing the newest ${last.length} of ${total} jobs.` : `${total} job${total === 1 ? '' : 's'}.`;
    if (summary.textContent !== txt) summary.textContent = txt;
  }
  statusSel.addEventListener('change', render);
  let debounce;
  nameInput.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(() => refresh().catch(error), 250); });
  function error(e) { errorBox.textContent = `Could not read the jobs: ${e.message}`; }
  return { refresh, error, go };
}
