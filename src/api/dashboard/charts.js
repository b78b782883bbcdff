// Small SVG charts for the dashboard (no library): a time series with marked points, and horizontal bars.
const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

/**
 * Draws a time series into `host` (an element; the SVG fills its width).
 * points: [{ t: epoch ms, v: number }]; marks: [{ t, label }] drawn as red dots on the series.
 */
export function timeSeries(host, points, marks = [], opts = {}) {
  const width = Math.max(200, host.clientWidth || 600);
  const height = opts.height || 220;
  const pad = { l: 48, r: 12, t: 12, b: 26 };
  host.replaceChildren();
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': opts.label || 'chart' }, host);
  if (points.length === 0) {
    el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, svg).textContent = 'no data yet';
    return svg;
  }
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t || t0 + 1;
  const max = niceMax(Math.max(...points.map((p) => p.v)));
  const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - (v / max) * (height - pad.t - pad.b);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    el('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: 'chart-grid' }, svg);
    el('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'chart-axis' }, svg).textContent = compact.format(v);
  }
  const ticks = Math.max(2, Math.min(6, points.length, Math.floor((width - pad.l) / 90)));
  for (let i = 0; i < ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / Math.max(1, ticks - 1);
    const label = new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    el('text', { x: x(t), y: height - 8, 'text-anchor': i === 0 ? 'start' : i === ticks - 1 ? 'end' : 'middle', class: 'chart-axis' }, svg).textContent = label;
  }
  const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
  el('path', { d: `${line}L${x(t1).toFixed(1)},${y(0)}L${x(t0).toFixed(1)},${y(0)}Z`, class: 'chart-area' }, svg);
  el('path', { d: line, class: 'chart-line' }, svg);
  const byT = new Map(points.map((p) => [p.t, p.v]));
  for (const m of marks) {
    if (!byT.has(m.t)) continue;
    const dot = el('circle', { cx: x(m.t), cy: y(byT.get(m.t)), r: 5, class: 'chart-mark' }, svg);
    el('title', {}, dot).textContent = m.label;
  }
  return svg;
}

/** Draws horizontal bars into `host`: items [{ label, value }]. */
export function bars(host, items, opts = {}) {
  const width = Math.max(200, host.clientWidth || 400);
  const row = 26;
  const height = Math.max(row, items.length * row) + 4;
  host.replaceChildren();
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': opts.label || 'bars' }, host);
  if (items.length === 0) {
    el('text', { x: width / 2, y: height / 2 + 4, 'text-anchor': 'middle', class: 'chart-empty' }, svg).textContent = 'no data yet';
    return svg;
  }
  const labelW = Math.min(110, width * 0.3);
  const valueW = 64;
  const max = Math.max(...items.map((i) => i.value), 1);
  items.forEach((item, i) => {
    const top = i * row + 2;
    el('text', { x: labelW - 8, y: top + 17, 'text-anchor': 'end', class: 'chart-label' }, svg).textContent = item.label;
    const w = ((width - labelW - valueW) * item.value) / max;
    el('rect', { x: labelW, y: top + 4, width: Math.max(1, w), height: row - 8, rx: 3, class: `chart-bar ${item.className || ''}` }, svg);
    el('text', { x: labelW + w + 6, y: top + 17, class: 'chart-label' }, svg).textContent = compact.format(item.value);
  });
  return svg;
}
