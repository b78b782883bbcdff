// The Kafka leg of bench/kafka.ts alone, several times on one WAL, watching for a stalled partition
// (docs/KAFKA.md, "a partition a broker leaves out of its fetch answers"): one WAL of ROWS rows in 10k-row
// transactions, then LEGS Kafka legs (each its own slot, topic prefix and warehouse; payload-only events,
// uncompressed), each watched every second; a partition whose next offset stays put for 5 s while it lags
// is reported with the consumer's status. BENCH_LEADERS=1,1,1,1,1,2/... sets each leg's partition leaders
// (librdkafka's mock picks them at random; five on one broker reproduced the stall before the fix).
// Usage: bun bench/kafka-stall.ts [rows=1000000] [legs=4]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafkaBus } from '../src/bus/index.ts';
import { startPipeline } from '../src/pipeline.ts';
import { connectSql } from '../src/source/index.ts';
import { createWarehouse, type Warehouse } from '../src/warehouse/index.ts';
import { startKafkaMock } from '../test/support/kafka.ts';
import { kafkaOptions } from '../test/support/kafka-bus.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const LEGS = Number(process.argv[3] ?? 4);
const TXN_ROWS = 10_000;
const PARTITIONS = 6;
const COMPRESSION = (process.env.BENCH_COMPRESSION ?? 'none') as 'none' | 'gzip';
const MAX_LAG = Number(process.env.BENCH_MAX_LAG ?? 40_000);
const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? String(v) : v);

const kafka = await startKafkaMock({ brokers: 3 });
const pg = await startPostgres();
const url = await pg.createDatabase('kstall');
const sql = connectSql(url, { max: 2 });
const dir = mkdtempSync(join(tmpdir(), 'ducktail-kstall-'));
const fill = (from: number, to: number) =>
  sql.unsafe(`INSERT INTO orders SELECT g, g % 1000, g % 50, (g % 10000) / 100.0, 1 + g % 4, 'pending',
    '2026-11-23 00:00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(${from}, ${to}) g`);

function run(leg: number, warehouse: Warehouse, limitMs: number) {
  const prefix = `st${leg}`;
  const bus = createKafkaBus(
    kafkaOptions(kafka.bootstrap, prefix, { partitions: PARTITIONS, batchRows: 10_000, lingerMs: 5, maxLag: MAX_LAG, compression: COMPRESSION, eventSchema: 'topic' }),
    { loadOffsets: () => warehouse.progress.kafkaOffsets(), log: (m) => console.error(`[${prefix}] ${m}`) },
  );
  const pipeline = startPipeline({
    warehouse, bus,
    source: { url, slot: `ks_${leg}`, publication: 'kstall', tables: [], batchRows: 10_000, batchMs: 200, statusIntervalMs: 1000, connectTimeoutS: 10 },
    log: (m) => console.error(`[${prefix}] ${m}`),
  });
  const status = pipeline.source!.status;
  return { bus, pipeline, status, async until(done: () => boolean) {
    const t0 = performance.now();
    const before = warehouse.stats.rowsApplied;
    const seen = new Map<string, { next: string; since: number }>();
    let stalled = false;
    while (!done()) {
      if (performance.now() - t0 > limitMs) { console.error(`[${prefix}] TIMEOUT after ${limitMs} ms`); stalled = true; break; }
      await Bun.sleep(1000);
      const st = (bus.status?.() as { consumer?: { partitions: { topic: string; partition: number; nextOffset: string; lag: string }[] } } | undefined)?.consumer;
      for (const p of st?.partitions ?? []) {
        const k = `${p.topic}/${p.partition}`;
        const s = seen.get(k);
        if (!s || s.next !== p.nextOffset) { seen.set(k, { next: p.nextOffset, since: Date.now() }); continue; }
        if (BigInt(p.lag) > 0n && Date.now() - s.since > 5000 && !stalled) {
          stalled = true;
          console.error(`[${prefix}] STALL ${k} at ${p.nextOffset} for ${Date.now() - s.since} ms: ${JSON.stringify(st, big)}`);
        }
      }
    }
    return { ms: performance.now() - t0, rows: warehouse.stats.rowsApplied - before, stalled };
  } };
}

try {
  await sql.unsafe(`CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint, product_id bigint,
    price numeric(10,2), quantity int, status text, order_date timestamptz)`);
  await fill(0, 0);
  const whs: Warehouse[] = [];
  for (let leg = 0; leg < LEGS; leg++) {
    await kafka.createTopic(`st${leg}.public.orders`, PARTITIONS, 3);
    const layouts = process.env.BENCH_LEADERS?.split('/');
    const layout = layouts?.[leg % layouts.length]?.split(',').map(Number);
    if (layout) for (let p = 0; p < PARTITIONS; p++) await kafka.setLeader(`st${leg}.public.orders`, p, layout[p]!);
    const w = await createWarehouse({ path: join(dir, `k${leg}.duckdb`), memoryLimit: '1GB', threads: 1, stream: `ks_${leg}` });
    whs.push(w);
    const r = run(leg, w, 60_000);
    await r.until(() => r.status.phase === 'streaming');
    await r.pipeline.stop();
  }
  for (let from = 1; from <= ROWS; from += TXN_ROWS) await fill(from, Math.min(from + TXN_ROWS - 1, ROWS));
  console.error(`filled ${ROWS} rows`);
  let stalls = 0;
  for (let leg = 0; leg < LEGS; leg++) {
    const w = whs[leg]!;
    const before = w.stats.rowsApplied;
    const r = run(leg, w, 150_000);
    const res = await r.until(() => w.stats.rowsApplied - before >= ROWS);
    if (res.stalled) stalls++;
    console.log(`leg ${leg}: ${res.rows} rows in ${Math.round(res.ms)} ms (${Math.round((res.rows / res.ms) * 1000)} rows/s)${res.stalled ? ' STALLED' : ''}`);
    await r.pipeline.stop();
    await w.close();
  }
  console.log(`${stalls} of ${LEGS} legs stalled`);
} finally {
  await sql.end();
  await kafka.stop();
  await stopPostgres();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
