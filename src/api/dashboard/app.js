// The dashboard: pipeline, charts and a query console over the ducktail API (same origin, no CDN).
import { bars, timeSeries } from './charts.js';

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]);
const TOKEN_KEY = 'ducktail.token';

class NeedsToken extends Error {}

/** Fetches from the API with the session's token; a 401 asks for one. */
async function api(path, init = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { ...(init.headers || {}), ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    if (token) sessionStorage.removeItem(TOKEN_KEY);
    $('token-form').hidden = false;
    throw new NeedsToken('this API needs a token');
  }
  const ct = res.headers.get('content-type') || '';
  const body = ct.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body && body.error ? `${body.error.code}: ${body.error.message}` : `${res.status} ${res.statusText}`);
  return body;
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  $('token-form').hidden = true;
  refresh();
});

/** Parses the Prometheus text of /metrics into { name{labels}: value }. */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out[line.slice(0, cut)] = Number(line.slice(cut + 1));
  }
  return out;
}

let previous = null;
function rates(m) {
  const now = performance.now();
  const cur = { at: now, changes: m.ducktail_changes_applied_total || 0, batches: m.ducktail_batches_applied_total || 0 };
  const prev = previous;
  previous = cur;
  if (!prev || now - prev.at < 200) return null;
  const s = (now - prev.at) / 1000;
  return { changes: (cur.changes - prev.changes) / s, batches: (cur.batches - prev.batches) / s };
}

const ago = (iso) => (iso ? `${Math.max(0, (Date.now() - Date.parse(iso)) / 1000).toFixed(1)} s ago` : 'never');
const seconds = (v) => (v === undefined || Number.isNaN(v) ? '–' : `${v < 10 ? v.toFixed(2) : v.toFixed(0)} s`);

function node(name, state, lines) {
  return `<div class="node ${state}"><div class="node-name">${esc(name)}</div>${lines.map((l) => `<div class="node-line">${esc(l)}</div>`).join('')}</div>`;
}
function edge(lines) {
  return `<div class="edge"><div class="arrow" aria-hidden="true"></div>${lines.map((l) => `<div class="edge-line">${esc(l)}</div>`).join('')}</div>`;
}

async function refreshPipeline() {
  const [metricsText, ready] = await Promise.all([fetch('/metrics').then((r) => r.text()), fetch('/readyz').then((r) => r.json())]);
  const status = await api('/v1/status');
  const m = parseMetrics(metricsText);
  const r = rates(m);
  const comp = ready.components || {};
  const st = (c) => (comp[c] ? (comp[c].ready ? (comp[c].degraded ? 'warn' : 'ok') : 'bad') : 'off');
  const src = status.source || {};
  const wh = status.warehouse || {};
  const bus = status.bus || { kind: 'inline' };
  const consumerLag = bus.consumer && bus.consumer.partitions ? bus.consumer.partitions.reduce((s, p) => s + Number(p.lag), 0) : null;
  const tier = status.tiering;
  const parts = [
    node('PostgreSQL', st('source'), [src.phase || 'disabled', `received ${src.receivedLsn || '–'}`]),
    edge([r ? `${fmt.format(Math.round(r.changes))} changes/s` : '… changes/s', `lag ${seconds(m.ducktail_replication_lag_seconds)}`]),
    node(`bus: ${bus.kind}`, st('bus'), [consumerLag === null ? 'in-process' : `consumer lag ${fmt.format(consumerLag)}`]),
    edge([r ? `${r.batches.toFixed(1)} batches/s` : '… batches/s', `apply ${wh.lastApplyMs !== undefined ? wh.lastApplyMs.toFixed(1) : '–'} ms`]),
    node('DuckDB', st('warehouse'), [`${fmt.format(wh.rowsApplied || 0)} changes applied`, `fresh: last commit ${ago(wh.lastCommitAt)}`]),
  ];
  if (tier) {
    parts.push(edge([`${fmt.format(tier.passes || 0)} passes`, tier.running ? 'moving now' : 'idle']));
    parts.push(node('tiers: warm / cold', st('tiering'), [tier.lastError ? 'last pass failed' : 'Parquet', tier.lastPass ? `last ${ago(tier.lastPass.startedAt)}` : 'no pass yet']));
  }
  $('pipeline').innerHTML = parts.join('');
  const pill = $('health');
  pill.className = `pill ${ready.status || (ready.ready ? 'ok' : 'unavailable')}`;
  pill.textContent = ready.status || (ready.ready ? 'ok' : 'unavailable');
  pill.title = (ready.reasons || []).join('\n');
  $('reasons').textContent = (ready.reasons || []).join(' · ');
}

async function refreshCharts() {
  const [rev, anomalies, daily] = await Promise.all([
    api('/v1/analytics/revenue?bucket=1m'),
    api('/v1/analytics/anomalies'),
    api('/v1/analytics/daily-orders'),
  ]);
  const points = rev.rows.map((row) => ({ t: Date.parse(row[0]), v: Number(row[2]) }));
  const marks = anomalies.rows.filter((a) => a[1] === 'revenue').map((a) => ({ t: Date.parse(a[0]), label: `${a[0]}: revenue ${a[2]}, z = ${a[5]}` }));
  timeSeries($('revenue-chart'), points, marks, { label: 'revenue per minute' });
  $('revenue-chart').dataset.points = String(points.length);
  $('anomaly-count').textContent = anomalies.rows.length ? `${anomalies.rows.length} anomalies (|z| ≥ threshold) in the last hour` : 'no anomalies in the last hour';
  const today = daily.rows[daily.rows.length - 1];
  $('kpi-orders').textContent = today ? fmt.format(today[1]) : '0';
  $('kpi-revenue').textContent = today ? money.format(Number(today[3])) : '0.00';
  $('kpi-aov').textContent = today && today[4] !== null ? money.format(Number(today[4])) : '–';
  const byStatus = await api('/v1/analytics/orders-by-status');
  bars($('status-chart'), byStatus.rows.map(([s, n]) => ({ label: s, value: n, className: s === 'cancelled' ? 'bad' : '' })), { label: 'orders per status' });
  $('status-chart').dataset.total = String(byStatus.rows.reduce((s, r) => s + Number(r[1]), 0));
}

let tick = 0;
async function refresh() {
  const errors = [];
  await refreshPipeline().catch((e) => errors.push(e));
  if (tick++ % 3 === 0) await refreshCharts().catch((e) => errors.push(e));
  const shown = errors.filter((e) => !(e instanceof NeedsToken));
  $('error').textContent = shown.map((e) => e.message.split('\n')[0]).join(' · ');
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

$('console').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = $('console-result');
  out.textContent = 'running…';
  try {
    const r = await api('/v1/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: $('sql').value }) });
    const head = `<tr>${r.columns.map((c) => `<th title="${esc(c.type)}">${esc(c.name)}</th>`).join('')}</tr>`;
    const body = r.rows.slice(0, 500).map((row) => `<tr>${row.map((v) => `<td>${esc(v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : v)}</td>`).join('')}</tr>`).join('');
    out.innerHTML = `<div class="muted">${fmt.format(r.rowCount)} rows in ${r.elapsedMs} ms${r.rowCount > 500 ? ' (first 500 shown)' : ''}</div><div class="scroll"><table class="grid">${head}${body}</table></div>`;
  } catch (err) {
    out.innerHTML = `<div class="error">${esc(err.message)}</div>`;
  }
});

let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    tick = 0;
    refresh();
  }, 200);
});

refresh();
setInterval(refresh, 2000);
