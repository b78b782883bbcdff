// Tiering benchmark: an archive pass's rows/s, and a dashboard query (revenue per day over a year)
// on an orders table of ROWS rows spread over 300 days, all hot vs 90% archived (hot_days = 30,
// warm_days = 180: warm Parquet and cold in s3rver through the local cache), then with 1% of the
// archived rows updated afterwards (deletes recorded by position). Same process, same data, one run.
// Usage: bun bench/tiering.ts [rows=10000000] [query runs=5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, TableSchema } from '../src/change/index.ts';
import { createLogger } from '../src/log.ts';
import { createTiering } from '../src/tiering/index.ts';
import { createWarehouse } from '../src/warehouse/index.ts';
import { startS3 } from '../test/support/s3.ts';

const ROWS = Number(process.argv[2] ?? 10_000_000);
const RUNS = Number(process.argv[3] ?? 5);
const DAYS = 300;
const ORDERS: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { key: true, name: 'order_id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'customer_id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'product_id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'price', typeOid: 1700, typeMod: ((10 << 16) | 2) + 4 },
    { key: false, name: 'quantity', typeOid: 23, typeMod: -1 },
    { key: false, name: 'status', typeOid: 25, typeMod: -1 },
    { key: false, name: 'order_date', typeOid: 1184, typeMod: -1 },
  ],
};
// A fixed instant (not now()): runs minutes apart must read the same rows at the window's edge.
const NOW = new Date();
const REVENUE =
  "SELECT date_trunc('day', order_date) AS day, sum(price * quantity) AS revenue, count(*) AS orders " +
  `FROM orders WHERE order_date >= TIMESTAMPTZ '${NOW.toISOString()}' - INTERVAL 365 DAY GROUP BY day ORDER BY day`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'ducktail-bench-tier-'));
const s3 = await startS3();
const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '3GB', threads: 2, stream: 'bench' });
try {
  const now = NOW.getTime();
  const row = (id: number, price: string): Change => ({
    op: 'U',
    table: 'public.orders',
    row: [String(id), String(id % 1000), String(id % 50), price, String(1 + (id % 4)), 'paid', new Date(now - ((id * DAYS * 86_400_000) / ROWS)).toISOString()],
    lsn: 1_000_000n + BigInt(id),
    seq: 0,
    commitTimeUs: BigInt(now) * 1000n,
  });
  await w.apply({ tables: new Map([['public.orders', ORDERS]]), changes: [{ ...row(0, '1.00'), op: 'I' }] });
  let t = performance.now();
  await w.exclusive((c) =>
    c.run(
      `INSERT INTO _hot."public.orders" SELECT range, range % 1000, range % 50, ((range % 10000) / 100.0)::DECIMAL(10,2), 1 + range % 4, 'paid', ` +
        `to_timestamp(${now / 1000} - range::DOUBLE * ${DAYS * 86_400} / ${ROWS}) FROM range(1, ${ROWS})`,
    ),
  );
  console.log(`loaded ${ROWS} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const query = async (label: string, sql = REVENUE) => {
    const times: number[] = [];
    let answer = '';
    for (let i = 0; i < RUNS; i++) {
      const c = await w.connect();
      t = performance.now();
      const r = await c.runAndReadAll(sql);
      times.push(performance.now() - t);
      answer = JSON.stringify(r.getRows().map((x) => x.map(String)));
      c.closeSync();
    }
    console.log(`${label}: median ${median(times).toFixed(0)} ms (runs: ${times.map((x) => x.toFixed(0)).join(', ')})`);
    return { ms: median(times), answer };
  };

  const hot = await query('revenue per day, all hot');
  // A recent window (last 45 days: hot and the newest warm files): the views skip files by the manifest's min/max.
  const RECENT = REVENUE.replace('365 DAY', '45 DAY');
  const recentHot = await query('revenue per day, last 45 days, all hot', RECENT);
  const options = (warmDays: number) => ({
      hotDays: 30,
      warmDays,
      warmDir: join(dir, 'warm'),
      coldUrl: `s3://${s3.bucket}/lake`,
      s3: { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      schedule: '0 3 * * *',
      graceMinutes: 0,
      coldCacheDir: join(dir, 'cache'),
      coldCacheSize: '4GB',
      compactMinFiles: 8,
      compactDeletedRatio: 0.3,
      tables: { 'public.orders': { timeColumn: 'order_date' } },
  });
  const deps = { exclusive: w.exclusive.bind(w), connect: () => w.connect(), log: createLogger('error') };
  // Pass 1: hot -> warm only (warm_days out of reach); pass 2: warm -> cold (warm_days = 180).
  t = performance.now();
  const report = await createTiering(options(100_000), deps).archive();
  const warmMs = performance.now() - t;
  const tiering = createTiering(options(180), deps);
  t = performance.now();
  const coldReport = await tiering.archive();
  const coldMs = performance.now() - t;
  for (const r of [report, coldReport]) if (r.errors.length > 0) throw new Error(r.errors.join('; '));
  const mib = (r: typeof report) => (r.moved.reduce((a, m) => a + m.bytes, 0) / 2 ** 20).toFixed(0);
  console.log(
    `archive pass hot -> warm: ${report.rowsToWarm} rows, ${report.moved.length} files, ${mib(report)} MiB in ${(warmMs / 1000).toFixed(1)} s = ` +
      `${Math.round(report.rowsToWarm / (warmMs / 1000))} rows/s`,
  );
  console.log(
    `archive pass warm -> cold (s3rver): ${coldReport.rowsToCold} rows, ${coldReport.moved.length} files, ${mib(coldReport)} MiB in ${(coldMs / 1000).toFixed(1)} s = ` +
      `${Math.round(coldReport.rowsToCold / (coldMs / 1000))} rows/s`,
  );
  const archived = await query('revenue per day, 90% archived');
  if (archived.answer !== hot.answer) throw new Error('answers differ between all hot and archived');
  const recent = await query('revenue per day, last 45 days, 90% archived', RECENT);
  if (recent.answer !== recentHot.answer) throw new Error('answers of the last 45 days differ between all hot and archived');
  const filesRead = async (sql: string) => {
    const c = await w.connect();
    const plan = (await c.runAndReadAll(`EXPLAIN ANALYZE ${sql}`)).getRows().map((r) => String(r[1])).join('\n');
    c.closeSync();
    return [...plan.matchAll(/Total Files Read: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
  console.log(`Parquet files opened: year ${await filesRead(REVENUE)}, last 45 days ${await filesRead(RECENT)}; last-45-days archived/hot = ${(recent.ms / recentHot.ms).toFixed(2)}`);

  // Cold read through the cache: first query after the cache is wiped downloads, then warm-like.
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  t = performance.now();
  await tiering.prepareQuery(REVENUE);
  const fill = performance.now() - t;
  console.log(`cold cache refill from s3rver before the first query: ${fill.toFixed(0)} ms`);
  await query('revenue per day, 90% archived, after the refill');
  // Same-size windows read only from cold (cached copies) and only from warm files.
  const window = (from: number, to: number) =>
    `SELECT count(*), sum(price * quantity) FROM orders WHERE order_date BETWEEN now() - INTERVAL ${from} DAY AND now() - INTERVAL ${to} DAY`;
  const coldRead = await query('100 days read from cold (cached) files', window(290, 190));
  const warmRead = await query('100 days read from warm files', window(150, 50));
  console.log(`cold/warm read ratio (median): ${(coldRead.ms / warmRead.ms).toFixed(2)}`);

  // 1% of the archived rows updated later (through the applier: positions recorded against the files).
  const ids = Array.from({ length: Math.floor(report.rowsToWarm / 100) }, (_, i) => ROWS - 1 - i * 100);
  t = performance.now();
  for (let i = 0; i < ids.length; i += 10_000) {
    await w.apply({ tables: new Map([['public.orders', ORDERS]]), changes: ids.slice(i, i + 10_000).map((id, k) => ({ ...row(id, '99.99'), lsn: 50_000_000n + BigInt(i), seq: k })) });
  }
  console.log(`applied ${ids.length} updates of archived rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const updated = await query('revenue per day, 90% archived, 1% of it updated');
  const check = await w.connect();
  const counts = (await check.runAndReadAll('SELECT count(*), count(DISTINCT order_id), (SELECT count(*) FROM _ducktail.tier_deletes) FROM orders')).getRows()[0]!;
  check.closeSync();
  if (Number(counts[0]) !== ROWS || Number(counts[1]) !== ROWS || Number(counts[2]) !== ids.length) {
    throw new Error(`after the updates: ${counts.join(', ')} (rows, keys, recorded deletes)`);
  }
  console.log(
    `ratios (median): archived/hot = ${(archived.ms / hot.ms).toFixed(2)}, 1%-updated/archived = ${(updated.ms / archived.ms).toFixed(2)}`,
  );
} finally {
  await w.close();
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
}
