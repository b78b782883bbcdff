// Minimal SVG charts for bench/plot.ts: line charts (linear or log axes) and horizontal bar charts.
// No network, no chart library: the SVG is rendered to PNG by the chromium CI installs.

export interface Series {
  name: string;
  points: [number, number][];
}

const W = 720;
const H = 400;
const M = { l: 70, r: 20, t: 40, b: 55 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#e377c2', '#7f7f7f'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const fmt = (v: number) => (Math.abs(v) >= 1e6 ? `${+(v / 1e6).toPrecision(3)}M` : Math.abs(v) >= 1e3 ? `${+(v / 1e3).toPrecision(3)}k` : `${+v.toPrecision(3)}`);

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.floor(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(v);
  return out;
}

function frame(title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/><text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>${body}</svg>`;
}

/** A line chart of `series`; log axes need positive values. */
export function lineChart(o: { title: string; x: string; y: string; logX?: boolean; logY?: boolean; series: Series[] }): string {
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => (!o.logX || x > 0) && (!o.logY || y > 0));
  if (all.length === 0) return frame(o.title, '<text x="360" y="200" text-anchor="middle">no data</text>');
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = o.logX ? [10 ** Math.floor(Math.log10(Math.min(...xs))), 10 ** Math.ceil(Math.log10(Math.max(...xs)))] : [Math.min(0, ...xs), Math.max(...xs) * 1.05];
  const [y0, y1] = o.logY ? [10 ** Math.floor(Math.log10(Math.min(...ys))), 10 ** Math.ceil(Math.log10(Math.max(...ys)))] : [0, Math.max(...ys) * 1.1 || 1];
  const sx = (v: number) => M.l + ((o.logX ? Math.log10(v / x0) / Math.log10(x1 / x0) : (v - x0) / (x1 - x0 || 1)) * (W - M.l - M.r));
  const sy = (v: number) => H - M.b - ((o.logY ? Math.log10(v / y0) / Math.log10(y1 / y0) : (v - y0) / (y1 - y0)) * (H - M.t - M.b));
  let body = '';
  for (const t of ticks(x0, x1, !!o.logX)) body += `<line x1="${sx(t)}" x2="${sx(t)}" y1="${M.t}" y2="${H - M.b}" stroke="#eee"/><text x="${sx(t)}" y="${H - M.b + 16}" text-anchor="middle">${fmt(t)}</text>`;
  for (const t of ticks(y0, y1, !!o.logY)) body += `<line x1="${M.l}" x2="${W - M.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/><text x="${M.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`;
  body += `<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#888"/>`;
  body += `<text x="${(W + M.l) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.x)}</text><text transform="translate(16 ${(H + M.t - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.y)}</text>`;
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.points.filter(([x, y]) => (!o.logX || x > 0) && (!o.logY || y > 0)).sort((a, b) => a[0] - b[0]);
    body += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' ')}"/>`;
    if (pts.length <= 40) for (const [x, y] of pts) body += `<circle cx="${sx(x)}" cy="${sy(y)}" r="3.5" fill="${c}"/>`;
    body += `<rect x="${M.l + 10}" y="${M.t + 8 + i * 18}" width="12" height="12" fill="${c}"/><text x="${M.l + 28}" y="${M.t + 18 + i * 18}">${esc(s.name)}</text>`;
  });
  return frame(o.title, body);
}

/** Horizontal bars, one per row, labelled with their value. */
export function barChart(o: { title: string; x: string; bars: { label: string; value: number; group?: number }[] }): string {
  // Room for the longest label (about 7.6 px per character at the chart's font size).
  const left = Math.max(120, Math.ceil(Math.max(...o.bars.map((b) => b.label.length)) * 7.6) + 16);
  const max = Math.max(...o.bars.map((b) => b.value), 1) * 1.15;
  const h = (H - M.t - M.b) / Math.max(1, o.bars.length);
  let body = `<text x="${(W + left) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.x)}</text>`;
  o.bars.forEach((b, i) => {
    const y = M.t + i * h + 3;
    const w = (b.value / max) * (W - left - M.r);
    body += `<text x="${left - 8}" y="${y + h / 2 + 2}" text-anchor="end">${esc(b.label)}</text>`;
    body += `<rect x="${left}" y="${y}" width="${w}" height="${h - 6}" fill="${COLORS[(b.group ?? 0) % COLORS.length]}"/>`;
    body += `<text x="${left + w + 5}" y="${y + h / 2 + 2}">${fmt(b.value)}</text>`;
  });
  return frame(o.title, body);
}
