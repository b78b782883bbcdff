// `npm run bench -- plot [results dir]`: the PNG plots of docs/SCALING.md from the bench JSON (per label the
// median of its newest 3 runs in bench/results/, bench/results.ts), drawn as SVG (bench/plot-svg.ts) and rendered by Debian's chromium
// through playwright-core (scripts/ci-install.sh installs it). Writes docs/scaling-*.png.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { barChart, lineChart, type Series } from './plot-svg.ts';
import { concurrencyCells, loadRuns, medianOf, RESULTS_DIR, type Run } from './results.ts';

const DIR = process.argv[2] ?? RESULTS_DIR;
const DOCS = join(import.meta.dir, '../docs');
const CHROMIUM = '/usr/bin/chromium';

// Per label the median of its newest 3 runs, as bench/report.ts tables them.
const all = loadRuns(DIR);
const newest = new Map([...all].map(([label, runs]) => [label, medianOf(runs, 3)]));
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
const flat = [...runs('scale-inline-max'), ...runs('scale-kafka-max'), ...runs('limit-').sort((a, b) => String(a.label).localeCompare(b.label))];
const ceilings = runs('scale-inline-max')[0];
charts.push([
  'scaling-throughput.png',
  barChart({
    title: 'Flat out: end-to-end rows/s per configuration, and the ceilings',
    x: 'rows/s (messages/s for kcat), same box, median of up to 3 runs each',
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
// Query cost: per size, its newest measurement (sizes are measured in separate lock turns).
const bySize = new Map<number, Run>();
for (const r of all.get('query-cost') ?? []) for (const s of r.sizes) if (!bySize.has(s.rows)) bySize.set(s.rows, s);
const sizes = [...bySize.values()].sort((a, b) => a.rows - b.rows);
if (sizes.length) {
  const line = (name: string, pick: (s: Run) => number | undefined): Series => ({ name, points: sizes.flatMap((s) => (pick(s) ? [[s.rows, pick(s)!] as [number, number]] : [])) });
  charts.push([
    'scaling-query-cost.png',
    lineChart({
      title: 'Revenue per day: query time vs rows, hot vs 90% tiered',
      x: 'rows in orders (log)',
      y: 'median ms (log)',
      logX: true,
      logY: true,
      series: [
        line('year, all hot (DuckDB)', (s) => s.hotMs),
        line('year, 90% archived (warm Parquet + cold via cache)', (s) => s.tieredMs),
        line('last 45 days, all hot', (s) => s.hotLast45Ms),
        line('last 45 days, 90% archived', (s) => s.tieredLast45Ms),
      ],
    }),
  ]);
}
const conc = newest.get('analytics-concurrency');
if (conc) {
  const cells = concurrencyCells(conc);
  const eps = [...new Set(cells.map((c) => c.endpoint))];
  charts.push([
    'scaling-concurrency.png',
    lineChart({
      title: `API p99 vs clients (${(conc.rows / 1e6).toFixed(0)}M orders, ${conc.ingestTarget} changes/s ingested${conc.of.length > 1 ? `; median of ${conc.of.length} runs` : ''})`,
      x: 'concurrent clients (log)',
      y: 'p99 ms (log)',
      logX: true,
      logY: true,
      series: eps.map((ep) => ({ name: ep.replace(/^GET |^POST /, ''), points: cells.filter((c) => c.endpoint === ep && c.p99 > 0).map((c) => [c.clients, c.p99] as [number, number]) })),
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
