// API latency benchmark: p50/p99 of POST /v1/query and each /v1/analytics endpoint under CLIENTS concurrent
// clients, over a ROWS-row orders table, while the real pipeline (embedded PostgreSQL -> pgoutput -> inline
// bus -> DuckDB) ingests about RATE changes/s into the same DuckDB instance.
// The big table is generated inside DuckDB (bench.orders, the demo's schema) and the analytics endpoints are
// pointed at it through [analytics] table; the live ingest goes to public.orders in the same database file.
// BENCH_API_CACHE=0 leaves the analytics result cache off (every request runs its query).
// Usage: bun bench/api.ts [rows=10000000] [clients=16, or a list: 1,16,50,100] [seconds=10] [rate=5000] [layout=ordered|random]
// BENCH_LABEL=name also writes the figures to bench/results/<name>-<time>.json (docs/SCALING.md, analytics
// under concurrent queries); BENCH_SERIES=name marks the run as one of a measurement series (bench/results.ts).
// BENCH_API_ONLY=text,text: only the endpoints whose name contains one of them (exploratory runs).
// Per endpoint and client count it also counts the DuckDB queries the requests ran (the rest of the answers
// were shared through the analytics result cache), their median time, and how often the warehouse position
// (the cache's key) moved: a cached endpoint whose query takes longer than the time between two applies
// runs one query per answer wave; a faster one also serves answers from a finished entry.
// layout: order_date rising with order_id, as a real table is written (DuckDB's zone maps skip row groups
// outside the range), or shuffled (every query scans the whole table).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApi, serveApi } from '../src/api/index.ts';
import { DEMO_ANALYTICS } from '../src/api/analytics/index.ts';
import { createInlineBus } from '../src/bus/index.ts';
import { applyDemoSchema } from '../src/demo/schema.ts';
import { startPipeline } from '../src/pipeline.ts';
import { connectSql } from '../src/source/index.ts';
import { createWarehouse } from '../src/warehouse/index.ts';
import { createQueryEngine } from '../src/warehouse/query.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';
import { BENCH_DAYS, benchOrdersSql } from './api-orders.ts';
import { codeCommit } from './results.ts';

const ROWS = Number(process.argv[2] ?? 10_000_000);
const CLIENT_COUNTS = (process.argv[3] ?? '16').split(',').map(Number);
if (CLIENT_COUNTS.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`clients must be whole numbers >= 1, e.g. 16 or 1,16,50; got ${process.argv[3]}`);
const SECONDS = Number(process.argv[4] ?? 10);
const RATE = Number(process.argv[5] ?? 5000);
const LAYOUT = process.argv[6] === 'random' ? 'random' : 'ordered';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

const dir = mkdtempSync(join(tmpdir(), 'ducktail-bench-api-'));
const pg = await startPostgres();
const url = await pg.createDatabase(`bench_api_${process.pid}`);
const sql = connectSql(url, { max: 2 });
await applyDemoSchema(sql);
const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: 'bench_api' });

let t = performance.now();
const gen = await warehouse.connect();
await gen.run(`CREATE SCHEMA IF NOT EXISTS bench; ${benchOrdersSql('bench.orders', ROWS, LAYOUT)}`);
gen.closeSync();
console.log(`bench.orders: ${ROWS} rows over ${BENCH_DAYS} days (${LAYOUT}) generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);

const pipeline = startPipeline({
  warehouse,
  bus: createInlineBus(),
  source: { url, slot: 'bench_api', publication: 'bench_api', tables: ['public.orders'], batchRows: 10_000, batchMs: 200, statusIntervalMs: 1000, connectTimeoutS: 10 },
  log: () => {},
});
while (pipeline.source!.status.phase !== 'streaming') await Bun.sleep(50);

// The ingest: RATE/10 changes every 100 ms (new orders, and status updates of recent ones).
const ingestStop = new AbortController();
const ingest = (async () => {
  let n = 0;
  while (!ingestStop.signal.aborted) {
    const tick = performance.now();
    const k = Math.round(RATE / 10);
    if (n % 2 === 0) {
      await sql.unsafe(`INSERT INTO orders (customer_id, product_id, price, quantity) SELECT 1 + g % 200, 1 + g % 50, 9.99, 1 FROM generate_series(1, ${k}) g`);
    } else {
      await sql.unsafe(`UPDATE orders SET status = 'paid' WHERE order_id IN (SELECT order_id FROM orders WHERE status = 'pending' ORDER BY order_id DESC LIMIT ${k})`);
    }
    n++;
    await Bun.sleep(Math.max(0, 100 - (performance.now() - tick)));
  }
})();

// Every query the API runs, timed (the analytics cache's misses and each POST /v1/query; not the catalog check).
const queryLog: { at: number; ms: number }[] = [];
const engine = createQueryEngine({ instance: warehouse.instance });
const timedEngine: typeof engine = {
  stream: engine.stream.bind(engine),
  async query(q, params, signal) {
    if (q.includes('information_schema')) return engine.query(q, params, signal);
    const at = performance.now();
    try {
      return await engine.query(q, params, signal);
    } finally {
      queryLog.push({ at, ms: performance.now() - at });
    }
  },
};
const app = createApi({
  query: timedEngine,
  tables: () => warehouse.tables(),
  readiness: () => ({}),
  version: 'bench',
  analytics: { ...DEMO_ANALYTICS, table: 'bench.orders' },
  ...(process.env.BENCH_API_CACHE === '0' ? {} : { position: () => warehouse.stats.writes }),
});
const server = await serveApi(app, { listen: '127.0.0.1:0' });

const ONLY = process.env.BENCH_API_ONLY?.split(',');
const ALL_ENDPOINTS: [string, string, RequestInit?][] = [
  [
    'POST /v1/query (status counts, 30 days)',
    '/v1/query',
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: "select status, count(*), sum(price * quantity) from bench.orders where order_date >= TIMESTAMPTZ '2026-10-26' group by status" }),
    },
  ],
  ['GET daily-orders (30 days)', '/v1/analytics/daily-orders?from=2026-10-26&to=2026-11-24'],
  ['GET revenue 1m (last hour)', '/v1/analytics/revenue?bucket=1m&from=2026-11-24T23:00:00Z&to=2026-11-25T00:00:00Z'],
  ['GET revenue 1h (7 days)', '/v1/analytics/revenue?bucket=1h&from=2026-11-18&to=2026-11-24'],
  ['GET revenue 1d (90 days)', '/v1/analytics/revenue?bucket=1d&from=2026-08-27&to=2026-11-24'],
  ['GET top-customers (30 days)', '/v1/analytics/top-customers?from=2026-10-26&to=2026-11-24&limit=10'],
  ['GET customer-activity (30 days)', '/v1/analytics/customer-activity?from=2026-10-26&to=2026-11-24'],
  ['GET anomalies 1m (last 6 h)', '/v1/analytics/anomalies?bucket=1m&from=2026-11-24T18:00:00Z&to=2026-11-25T00:00:00Z'],
];
const ENDPOINTS = ALL_ENDPOINTS.filter(([name]) => !ONLY || ONLY.some((o) => name.includes(o)));

console.log(`\n${CLIENT_COUNTS.join(', ')} clients, ${SECONDS} s per endpoint and count, ingest target ${RATE} changes/s (other work may share the 2 cores)`);
console.log('endpoint                                   clients requests   p50 ms   p99 ms   errors   ingest changes/s  queries run  query p50 ms  position moves/s');
const results: {
  endpoint: string;
  clients: number;
  requests: number;
  perS: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  ingestPerS: number;
  /** DuckDB queries the window's requests ran (the other answers were shared through the cache). */
  queries: number;
  /** Median time of those queries. */
  queryP50: number;
  /** Warehouse position (stats.writes, the cache's key) changes per second during the window. */
  positionMovesPerS: number;
}[] = [];
const loadAtStart = loadavg()[0];
const code = codeCommit();
for (const [name, path, init] of ENDPOINTS) {
  for (const CLIENTS of CLIENT_COUNTS) {
    const times: number[] = [];
    let errors = 0;
    const applied0 = warehouse.stats.rowsApplied;
    const writes0 = warehouse.stats.writes;
    const logged0 = queryLog.length;
    const started = performance.now();
    const until = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          // A reset connection counts as an error: Bun.serve closes a request idle for 60 s (idleTimeout).
          const res = await fetch(server.url + path, init).catch(() => null);
          await res?.arrayBuffer();
          if (res?.status === 200) times.push(performance.now() - t0);
          else errors++;
        }
      }),
    );
    const elapsed = performance.now() - started;
    const ingestRate = ((warehouse.stats.rowsApplied - applied0) / elapsed) * 1000;
    const ran = queryLog.slice(logged0).map((q) => q.ms);
    const moves = ((warehouse.stats.writes - writes0) / elapsed) * 1000;
    results.push({
      endpoint: name,
      clients: CLIENTS,
      requests: times.length,
      perS: (times.length / elapsed) * 1000,
      p50: pct(times, 50),
      p99: pct(times, 99),
      max: Math.max(...times),
      errors,
      ingestPerS: ingestRate,
      queries: ran.length,
      queryP50: pct(ran, 50),
      positionMovesPerS: moves,
    });
    console.log(
      `${name.padEnd(42)} ${String(CLIENTS).padStart(7)} ${String(times.length).padStart(8)} ${pct(times, 50).toFixed(1).padStart(8)} ${pct(times, 99).toFixed(1).padStart(8)} ${String(errors).padStart(8)} ${ingestRate.toFixed(0).padStart(18)} ${String(ran.length).padStart(12)} ${pct(ran, 50).toFixed(1).padStart(13)} ${moves.toFixed(1).padStart(17)}`,
    );
  }
}
if (process.env.BENCH_LABEL) {
  const commit = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD']).stdout.toString().trim();
  const out = join(import.meta.dir, 'results', `${process.env.BENCH_LABEL}-${Date.now()}.json`);
  mkdirSync(join(import.meta.dir, 'results'), { recursive: true });
  const run = { label: process.env.BENCH_LABEL, ...(process.env.BENCH_SERIES ? { series: process.env.BENCH_SERIES } : {}), args: process.argv.slice(2), rows: ROWS, seconds: SECONDS, ingestTarget: RATE, layout: LAYOUT, cache: process.env.BENCH_API_CACHE !== '0', commit, codeCommit: code, at: new Date().toISOString(), loadAvgAtStart: loadAtStart, cores: navigator.hardwareConcurrency, results };
  writeFileSync(out, `${JSON.stringify(run, null, 1)}\n`);
  console.log(`json: ${out}`);
}

ingestStop.abort();
await ingest;
await server.stop();
await pipeline.stop();
await warehouse.close();
await sql.end();
await stopPostgres();
rmSync(dir, { recursive: true, force: true });
