// The lag chart: an SVG of the seconds behind the source and the copy rate
// over the samples the server keeps (DescribeMigrateJobLagHistory), with a
// text summary for screen readers.
import { h } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function line(samples, key, W, H, pad, max, cls) {
  const n = samples.length;
  const pts = samples.map((x, i) => {
    const px = pad + (n === 1 ? 0 : (i * (W - 2 * pad)) / (n - 1));
    const py = H - pad - (max ? (x[key] / max) * (H - 2 * pad) : 0);
    return `${px.toFixed(1)},${py.toFixed(1)}`;
  });
  return s('polyline', { points: pts.join(' '), class: cls, fill: 'none' });
}

export function lagChart(samples, interval, keep) {
  const note = h('p', { class: 'muted small' }, `The server keeps one sample every ${interval} s while the job migrates, the last ${keep || 'few'} (in memory: a restart clears them).`);
  if (!samples.length) return [h('p', { class: 'muted' }, 'No samples yet: they are taken while the job migrates.'), note];
  const W = 720, H = 180, pad = 28;
  const maxLag = Math.max(1, ...samples.map((x) => x.SecondsBehindMaster));
  const maxRate = Math.max(1, ...samples.map((x) => x.RowsPerSecond));
  const last = samples[samples.length - 1];
  const summary = `${samples.length} samples from ${samples[0].Time} to ${last.Time}; lag now ${last.SecondsBehindMaster} s (${last.MasterSlaveDistance} MB), at most ${maxLag} s; copy rate at most ${maxRate} rows/s.`;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': summary });
  svg.append(
    s('line', { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: 'axis' }),
    s('line', { x1: pad, y1: pad, x2: pad, y2: H - pad, class: 'axis' }),
    s('text', { x: pad, y: pad - 8, class: 'lbl lag' }, `lag, max ${maxLag} s`),
    s('text', { x: W - pad, y: pad - 8, class: 'lbl rate', 'text-anchor': 'end' }, `copy rate, max ${maxRate} rows/s`),
    s('text', { x: pad, y: H - 8, class: 'lbl' }, samples[0].Time.slice(11)),
    s('text', { x: W - pad, y: H - 8, class: 'lbl', 'text-anchor': 'end' }, last.Time.slice(11)),
    line(samples, 'RowsPerSecond', W, H, pad, maxRate, 'rate'),
    line(samples, 'SecondsBehindMaster', W, H, pad, maxLag, 'lag'));
  return [svg, h('p', { class: 'small', id: 'lag-summary' }, summary), note];
}
