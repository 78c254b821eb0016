// Small DOM helpers shared by the console's views.

// h builds an element: h('a', {href: '#'}, 'text', child...). Attributes
// starting with "on" are listeners; null and false children are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The job statuses of docs/api.md, with a word, an icon and a colour class:
// the colour never carries the meaning alone.
export const STATUSES = {
  1: { name: 'created', icon: '○', tone: 'neutral' },
  3: { name: 'checking', icon: '◔', tone: 'info' },
  4: { name: 'check passed', icon: '✓', tone: 'ok' },
  5: { name: 'check failed', icon: '✕', tone: 'bad' },
  6: { name: 'waiting for start time', icon: '◷', tone: 'info' },
  7: { name: 'running', icon: '▶', tone: 'info' },
  8: { name: 'ready to complete', icon: '⇥', tone: 'warn' },
  9: { name: 'succeeded', icon: '✔', tone: 'ok' },
  10: { name: 'failed', icon: '✕', tone: 'bad' },
  11: { name: 'stopping', icon: '■', tone: 'warn' },
  12: { name: 'completing', icon: '⇥', tone: 'info' },
};

export function statusName(st) {
  return (STATUSES[st] || { name: `status ${st}` }).name;
}

export function badge(st) {
  const s = STATUSES[st] || { name: `status ${st}`, icon: '?', tone: 'neutral' };
  return h('span', { class: `badge ${s.tone}`, 'data-status': st },
    h('span', { 'aria-hidden': 'true' }, s.icon), ' ', s.name);
}

export const MIGRATE_TYPES = { 1: 'structure', 2: 'full', 3: 'full + incremental' };

// The actions each status allows (docs/api.md, section 2).
export const ACTIONS = [
  { id: 'check', label: 'Check', at: [1, 4, 5], api: 'CreateMigrateCheckJob' },
  { id: 'start', label: 'Start', at: [4], api: 'StartMigrateJob' },
  { id: 'complete', label: 'Complete', at: [8], api: 'CompleteMigrateJob', confirm: 'Complete job %s? Stop writing to the source first: the job applies the changes up to now and ends.' },
  { id: 'stop', label: 'Stop', at: [6, 7, 8], api: 'StopMigrateJob', confirm: 'Stop job %s? It ends at status failed and must be modified and checked again to run.', danger: true },
  { id: 'modify', label: 'Modify', at: [1, 4, 5, 10] },
  { id: 'delete', label: 'Delete', at: [1, 4, 5, 6, 9, 10], api: 'DeleteMigrateJob', confirm: 'Delete job %s? This cannot be undone.', danger: true },
];

// confirmDialog asks in the page's modal dialog; resolves true on OK.
export function confirmDialog(text, okLabel = 'OK') {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

let toastTimer;
export function toast(text, bad = false) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = bad ? 'show bad' : 'show';
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = ''; }, 6000);
}

// endpoint describes one side of a job: "mariadb 127.0.0.1:3306" or
// "mysql cdb-xxxx".
export function endpoint(type, access, info) {
  info = info || {};
  const where = info.InstanceId ? info.InstanceId : info.Ip ? `${info.Ip}:${info.Port}` : access;
  return `${type} ${where}`;
}

export function fmtInt(n) {
  return Number(n || 0).toLocaleString('en-US');
}

export function fmtTime(t) {
  return !t || t.startsWith('0000') ? '—' : t;
}

export function fmtDuration(s) {
  if (s < 0) return 'unknown';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// patch replaces el's content with build() only when key changed since the
// last patch, so a refresh redraws only what moved.
const sigs = new WeakMap();
export function patch(el, data, build) {
  const sig = JSON.stringify(data);
  if (sigs.get(el) === sig) return;
  sigs.set(el, sig);
  el.replaceChildren(...[build(data)].flat().filter(Boolean));
}

// runAction calls an action's API for a job after its confirmation.
export async function runAction(call, action, jobId) {
  if (action.confirm) {
    const ok = await confirmDialog(action.confirm.replace('%s', jobId), action.label);
    if (!ok) return false;
  }
  try {
    await call(action.api, { JobId: jobId });
    toast(`${action.label}: sent for ${jobId}.`);
    return true;
  } catch (e) {
    toast(`${action.label} ${jobId}: ${e.message}`, true);
    return false;
  }
}
