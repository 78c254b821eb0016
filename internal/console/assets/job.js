// The job page: status and actions, progress, steps, tables, lag chart,
// check items, verification, errors and settings, refreshed in place.
import { h, badge, MIGRATE_TYPES, ACTIONS, endpoint, fmtInt, fmtTime, fmtDuration, runAction, patch } from './ui.js';
import { lagChart } from './chart.js';

const STEP_STATUS = { 0: ['not started', 'neutral', '○'], 1: ['succeeded', 'ok', '✔'], 2: ['failed', 'bad', '✕'], 3: ['running', 'info', '▶'], 4: ['waiting', 'neutral', '◷'] };
const CHECK_RESULT = { pass: ['passed', 'ok', '✔'], warning: ['warning', 'warn', '!'], fail: ['failed', 'bad', '✕'], notRun: ['not run', 'neutral', '○'] };

function pill([word, tone, icon]) {
  return h('span', { class: `badge ${tone}` }, h('span', { 'aria-hidden': 'true' }, icon), ' ', word);
}

function section(id, title) {
  const body = h('div', { class: 'section-body' });
  const el = h('section', { id, class: 'card', 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title), body);
  return { el, body };
}

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// Settings: everything the job was given, never a password.
function settings(j) {
  const side = (label, type, access, info) => {
    const rows = [[`${label} type`, type], [`${label} access`, access]];
    for (const [k, v] of Object.entries(info || {})) {
      if (/password|secret|accesskey/i.test(k) || v === '' || v === null || (k === 'Port' && !v)) continue;
      rows.push([`${label} ${k}`, String(v)]);
    }
    return rows;
  };
  const o = j.MigrateOption || {};
  return kv([
    ['Job name', j.JobName],
    ['Migration type', MIGRATE_TYPES[o.MigrateType] || o.MigrateType],
    ['Objects', o.MigrateObject === 2 ? 'a selection' : 'the whole instance'],
    ['Run mode', o.RunMode === 2 ? `at ${o.ExpectTime}` : 'when started'],
    ['Verification', { 1: 'none', 2: 'full content check', 3: 'sampled', 4: 'full content check', 5: 'none' }[o.ConsistencyType] || 'none'],
    ...side('Source', j.SrcDatabaseType, j.SrcAccessType, j.SrcInfo),
    ...side('Target', j.DstDatabaseType, j.DstAccessType, j.DstInfo),
    ['DatabaseInfo', j.DatabaseInfo && j.DatabaseInfo !== '[]' ? h('code', {}, j.DatabaseInfo) : 'whole instance'],
    ['Tags', (j.Tags || []).map((t) => `${t.TagKey}=${t.TagValue || ''}`).join(', ')],
    ['Created', fmtTime(j.CreateTime)], ['Started', fmtTime(j.StartTime)], ['Ended', fmtTime(j.EndTime)],
  ]);
}

function table(caption, cols, rows) {
  if (!rows.length) return null;
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : {}, c)))))));
}

export function jobView({ main, call, go }, jobId) {
  document.title = `${jobId} · opendts console`;
  const title = h('h1', { id: 'job-title' }, jobId);
  const head = h('div', { id: 'job-head', class: 'job-head' });
  const err = h('p', { class: 'error', role: 'alert', id: 'job-error' });
  const s = {
    progress: section('progress', 'Progress'),
    steps: section('steps', 'Steps'),
    tables: section('tables', 'Tables'),
    lag: section('lag', 'Lag over time'),
    check: section('check', 'Check'),
    verify: section('verification', 'Verification'),
    errors: section('errors', 'Errors'),
    settings: section('settings', 'Settings'),
  };
  main.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, 'Migration jobs'), ' / ', h('span', { class: 'mono' }, jobId)),
    title, head, err,
    h('div', { class: 'grid' }, s.progress.el, s.steps.el),
    s.errors.el, s.tables.el, s.lag.el, s.check.el, s.verify.el, s.settings.el);
  s.errors.el.hidden = true;

  async function refresh() {
    let j;
    try {
      const out = await call('DescribeMigrateJobs', { JobId: jobId, Limit: 1 });
      j = (out.JobList || [])[0];
    } catch (e) {
      if (e.code === 'ResourceNotFound.JobNotExist') j = null;
      else throw e;
    }
    if (!j) {
      err.textContent = `Job ${jobId} does not exist (it may have been deleted).`;
      return;
    }
    err.textContent = '';
    const [check, lag] = await Promise.all([
      call('DescribeMigrateCheckJob', { JobId: jobId }).catch(() => null),
      call('DescribeMigrateJobLagHistory', { JobId: jobId }).catch(() => null),
    ]);
    render(j, check, lag);
  }

  function render(j, check, lag) {
    const d = j.Detail || {};
    patch(title, j.JobName, (n) => [n, ' ', h('span', { class: 'muted mono small' }, jobId)]);
    patch(head, [j.Status, j.MigrateOption.MigrateType], () => [
      h('span', { id: 'job-status' }, badge(j.Status)),
      h('span', { class: 'muted' }, `${endpoint(j.SrcDatabaseType, j.SrcAccessType, j.SrcInfo)} → ${endpoint(j.DstDatabaseType, j.DstAccessType, j.DstInfo)} · ${MIGRATE_TYPES[j.MigrateOption.MigrateType]}`),
      h('div', { class: 'actions' }, ACTIONS.filter((a) => a.at.includes(j.Status) && !(a.id === 'complete' && j.MigrateOption.MigrateType !== 3)).map((a) =>
        a.id === 'modify'
          ? h('a', { href: `#/jobs/${encodeURIComponent(jobId)}/edit`, class: 'button', 'data-action': 'modify' }, a.label)
          : h('button', { type: 'button', class: a.danger ? 'danger' : '', 'data-action': a.id, onclick: async () => {
            if (await runAction(call, a, jobId)) {
              if (a.id === 'delete') go('#/jobs'); else refresh();
            }
          } }, a.label))),
    ]);
    const cp = j.CopyProgress || {};
    const lagged = j.MigrateOption.MigrateType === 3;
    patch(s.progress.body, [d.Progress, d.CurrentStepProgress, d.StepNow, d.SecondsBehindMaster, d.MasterSlaveDistance, cp, j.Status, j.Node], () => {
      const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Number(d.Progress || 0), 'aria-label': 'Job progress' }, h('span', { class: 'fill' }));
      bar.firstChild.style.width = `${Number(d.Progress || 0)}%`;
      const step = (d.StepInfo || []).find((x) => x.StepNo === d.StepNow);
      return [
        h('p', { class: 'big', id: 'job-progress' }, `${d.Progress || 0}%`), bar,
        kv([
          ['Current step', step ? `${step.StepName}: ${d.CurrentStepProgress || 0}%` : '—'],
          ['Rows copied', cp.RowsTotal ? `${fmtInt(cp.RowsDone)} of about ${fmtInt(cp.RowsTotal)}` : undefined],
          ['Tables copied', cp.TablesTotal ? `${cp.TablesDone} of ${cp.TablesTotal}` : undefined],
          ['Copy rate', cp.RowsPerSecond ? `${fmtInt(cp.RowsPerSecond)} rows/s` : undefined],
          ['Time left (copy)', cp.EtaSeconds > 0 ? fmtDuration(cp.EtaSeconds) : undefined],
          ['Lag', lagged ? `${d.SecondsBehindMaster || 0} s behind the source, ${d.MasterSlaveDistance || 0} MB of binlog` : undefined],
          // Cluster mode: the node that runs the job now.
          ['Node', j.Node || undefined],
        ]),
      ];
    });
    patch(s.steps.body, d.StepInfo || [], (steps) => steps.length
      ? h('ol', { class: 'timeline' }, steps.map((x) => h('li', { class: `step s${x.Status}`, 'data-step': x.StepId },
        h('span', { class: 'step-name' }, `${x.StepNo}. ${x.StepName}`), ' ', pill(STEP_STATUS[x.Status] || STEP_STATUS[0]),
        h('span', { class: 'muted small' }, x.StartTime && !x.StartTime.startsWith('0000') ? ` started ${x.StartTime}` : ''))))
      : h('p', { class: 'muted' }, 'The steps appear when the job starts.'));
    patch(s.tables.body, j.TableProgress || [], (tp) => table('Copy of each table',
      ['Table', 'Status', 'Rows copied', 'Rows (estimate)', 'Rows/s'],
      tp.map((t) => [[t.Database, t.Schema, t.Table].filter(Boolean).join('.'), t.Status, fmtInt(t.RowsDone), fmtInt(t.RowsTotal), fmtInt(t.RowsPerSecond)]))
      || h('p', { class: 'muted' }, 'No table copied yet.'));
    patch(s.lag.body, lag && lag.Samples, (samples) => lagChart(samples || [], lag ? lag.IntervalSeconds : 2, lag ? lag.MaxSamples : 0));
    patch(s.check.body, check, (c) => {
      if (!c || c.Status === 'unavailable') return h('p', { class: 'muted' }, 'Not checked yet.');
      const flag = { 0: ['failed', 'bad', '✕'], 1: ['passed', 'ok', '✔'], 3: ['not checked', 'neutral', '○'] }[c.CheckFlag] || ['running', 'info', '◔'];
      return [
        h('p', { id: 'check-summary' }, c.Status === 'finished' ? pill(flag) : pill(['running', 'info', '◔']), ` ${c.Status}, ${c.Progress || 0}%`),
        table('Check items', ['Item', 'Result', 'Message', 'Advice'],
          (c.CheckItems || []).map((i) => [i.Name, pill(CHECK_RESULT[i.Result] || [i.Result, 'neutral', '?']), i.Message || '', i.Advice || ''])),
      ];
    });
    patch(s.verify.body, [j.ConsistencyResult || [], j.MigrateOption.ConsistencyType], ([rs, ct]) => rs.length
      ? table('Verification of each table', ['Table', 'Method', 'Rows', 'Differences', 'First differing keys', 'Detail'],
        rs.map((r) => [`${r.Database}.${r.Table}`, r.Method, fmtInt(r.Rows),
          pill(r.Differences ? [`${fmtInt(r.Differences)} differ`, 'bad', '✕'] : ['same', 'ok', '✔']), (r.FirstKeys || []).join(', '), r.Detail || '']))
      : h('p', { class: 'muted' }, [2, 3, 4].includes(ct) ? 'The verification runs when the copy (or, for full + incremental, the completion) ends.' : 'No verification was asked for (ConsistencyType).'));
    s.errors.el.hidden = !(j.ErrorInfo || []).length;
    patch(s.errors.body, j.ErrorInfo || [], (errs) => h('ul', { class: 'errors' }, errs.map((e) => h('li', {}, e.ErrorLog, e.HelpDoc ? h('span', { class: 'muted' }, ` (${e.HelpDoc})`) : ''))));
    patch(s.settings.body, { ...j, Detail: null, CopyProgress: null, TableProgress: null, Status: null }, () => settings(j));
  }

  return { refresh, error: (e) => { err.textContent = `Could not read the job: ${e.message}`; } };
}
