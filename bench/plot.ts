// `npm run bench -- plot [results dir]`: the PNG plots of docs/SCALING.md from the bench JSON (the newest
// file per label in bench/results/), drawn as SVG (bench/plot-svg.ts) and rendered by Debian's chromium
// through playwright-core (scripts/ci-install.sh installs it). Writes docs/scaling-*.png.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { barChart, lineChart, type Series } from './plot-svg.ts';

const DIR = process.argv[2] ?? join(import.meta.dir, 'results');
const DOCS = join(import.meta.dir, '../docs');
const CHROMIUM = '/usr/bin/chromium';

// biome-ignore lint: bench JSON is read loosely
type Run = Record<string, any>;
const newest = new Map<string, Run>();
for (const f of readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()) {
  const r = JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Run;
  const prev = newest.get(r.label);
  if (!prev || prev.at < r.at) newest.set(r.label, r);
}
const runs = (prefix: string) => [...newest.values()].filter((r) => String(r.label).startsWith(prefix));
const offered = (r: Run) => Math.max(r.generator?.offeredChangesPerS ?? 0, 0.001);

const charts: [string, string][] = [];
const rateSeries = (pick: (r: Run) => number | null, bus: string, name: string): Series => ({
  name,
  points: runs(`scale-${bus}-`).flatMap((r) => (pick(r) === null || pick(r) === undefined ? [] : [[offered(r), pick(r)!] as [number, number]])),
});
charts.push([
  'scaling-latency.png',
  lineChart({
    title: 'Commit-to-queryable latency vs offered load (probes via the HTTP API)',
    x: 'offered changes/s (log; 1x..1,000,000x of a 100-orders/day shop, then flat out)',
    y: 'ms (log)',
    logX: true,
    logY: true,
    series: [
      rateSeries((r) => r.latencyMs?.p50, 'inline', 'inline p50'),
      rateSeries((r) => r.latencyMs?.p99, 'inline', 'inline p99'),
      rateSeries((r) => r.latencyMs?.p50, 'kafka', 'kafka p50'),
      rateSeries((r) => r.latencyMs?.p99, 'kafka', 'kafka p99'),
    ],
  }),
]);
charts.push([
  'scaling-resources.png',
  lineChart({
    title: "ducktail's CPU and memory vs offered load",
    x: 'offered changes/s (log)',
    y: 'CPU % of one core / RSS MB',
    logX: true,
    series: [
      rateSeries((r) => r.ducktail?.cpuPctMean, 'inline', 'inline CPU %'),
      rateSeries((r) => r.ducktail?.rssPeakMB, 'inline', 'inline RSS peak MB'),
      rateSeries((r) => r.ducktail?.cpuPctMean, 'kafka', 'kafka CPU %'),
      rateSeries((r) => r.ducktail?.rssPeakMB, 'kafka', 'kafka RSS peak MB'),
    ],
  }),
]);
const flat = [...runs('scale-inline-max'), ...runs('scale-kafka-max'), ...runs('limit-')];
const ceilings = runs('scale-inline-max')[0];
charts.push([
  'scaling-throughput.png',
  barChart({
    title: 'Flat out: end-to-end rows/s per configuration, and the ceilings',
    x: 'rows/s (messages/s for kcat), same box, medians not taken: one run each',
    bars: [
      ...flat.map((r) => ({ label: `${String(r.label).replace(/^scale-|^limit-/, '')}${r.catchUp ? ' (from spawn)' : ''}`, value: (r.catchUp ? r.catchUpRowsPerS : r.endToEndRowsPerS) ?? 0, group: 0 })),
      ...flat.map((r) => ({ label: `${String(r.label).replace(/^scale-|^limit-/, '')}: offered`, value: r.generator?.offeredChangesPerS ?? 0, group: 3 })),
      ...(ceilings?.pgRecvlogicalRowsPerS ? [{ label: 'pg_recvlogical (same WAL)', value: ceilings.pgRecvlogicalRowsPerS, group: 1 }] : []),
      ...runs('scale-kafka-max').flatMap((r) => (r.kcat ? [{ label: 'kcat producing', value: r.kcat.producedPerS, group: 1 }] : [])),
    ],
  }),
]);
const timeline = runs('scale-inline-max')[0];
if (timeline) {
  charts.push([
    'scaling-flat-out-timeline.png',
    lineChart({
      title: `Flat out (inline), second by second: ${timeline.generator?.offeredChangesPerS} changes/s offered`,
      x: 'seconds into the run',
      y: 'rows applied/s (k) / RSS MB / lag ms',
      series: [
        { name: 'rows applied/s / 100', points: timeline.samples.slice(1).map((s: Run, i: number) => [s.t, (s.applied - timeline.samples[i].applied) / 100 / Math.max(0.1, s.t - timeline.samples[i].t)]) },
        { name: 'RSS MB', points: timeline.samples.map((s: Run) => [s.t, s.rssMB]) },
        { name: 'replication lag ms', points: timeline.samples.map((s: Run) => [s.t, (s.lagS ?? 0) * 1000]) },
      ],
    }),
  ]);
}
const qc = newest.get('query-cost');
if (qc) {
  charts.push([
    'scaling-query-cost.png',
    lineChart({
      title: 'Revenue per day over a year: query time vs rows, hot vs 90% tiered',
      x: 'rows in orders (log)',
      y: 'median ms (log)',
      logX: true,
      logY: true,
      series: [
        { name: 'all hot (DuckDB)', points: qc.sizes.map((s: Run) => [s.rows, s.hotMs]) },
        { name: '90% archived (warm Parquet + cold via cache)', points: qc.sizes.map((s: Run) => [s.rows, s.tieredMs]) },
      ],
    }),
  ]);
}

if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/ci-install.sh installs Debian's chromium`);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 720, height: 400 } });
  for (const [name, svg] of charts) {
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    writeFileSync(join(DOCS, name), await page.locator('svg').screenshot());
    console.log(`docs/${name}`);
  }
} finally {
  await browser.close();
}
