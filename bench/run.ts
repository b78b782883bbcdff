// Ingest benchmark against a real embedded PostgreSQL, on the demo's 7-column orders table.
// Per run: (1) the initial copy of ROWS rows; (2) catch-up: ROWS more rows are written in
// 10k-row transactions while ducktail is stopped, then ducktail (pgoutput -> inline bus -> DuckDB)
// and, side by side on the same WAL, pg_recvlogical (raw decoding into /dev/null, the ceiling)
// each read them from their own slot. Prints each run and the medians; the order of the two
// catch-up readers alternates between runs.
// Usage: bun bench/run.ts [rows=200000] [runs=3]      (BENCH_VERBOSE=1 shows the source's log)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { createInlineBus } from '../src/bus/index.ts';
import { startPipeline } from '../src/pipeline.ts';
import { connectSql } from '../src/source/index.ts';
import { createWarehouse, type Warehouse } from '../src/warehouse/index.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';

const ROWS = Number(process.argv[2] ?? 200_000);
const RUNS = Number(process.argv[3] ?? 3);
const TXN_ROWS = 10_000;
const PG_RECVLOGICAL = Bun.which('pg_recvlogical');

interface RunResult {
  copy: number;
  catchUp: number;
  raw: number | null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (rows: number, ms: number) => (rows / ms) * 1000;

/** One polling step; a source that hits an error fails the benchmark instead of retrying forever. */
async function waitStep(status: { phase: string; error: string | null }): Promise<void> {
  if (status.phase === 'retrying') throw new Error(`source failed: ${status.error}`);
  await Bun.sleep(5);
}

function fill(sql: Sql, from: number, to: number) {
  return sql.unsafe(`INSERT INTO orders SELECT g, g % 1000, g % 50, (g % 10000) / 100.0, 1 + g % 4, 'pending',
    '2026-11-23 00:00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(${from}, ${to}) g`);
}

/** Runs the pipeline from the slot; resolves with the ms until `rows` more rows were applied (0 = until streaming). */
async function ducktail(url: string, slot: string, warehouse: Warehouse, rows: number): Promise<number> {
  const started = performance.now();
  const before = warehouse.stats.rowsApplied;
  const pipeline = startPipeline({
    warehouse,
    bus: createInlineBus(),
    source: { url, slot, publication: 'bench', tables: [], batchRows: 10_000, batchMs: 200, statusIntervalMs: 1000, connectTimeoutS: 10 },
    log: (m) => {
      if (process.env.BENCH_VERBOSE) console.error(m);
    },
  });
  const status = pipeline.source!.status;
  if (rows === 0) while (status.phase !== 'streaming') await waitStep(status);
  else while (warehouse.stats.rowsApplied - before < rows) await waitStep(status);
  const ms = performance.now() - started;
  await pipeline.stop();
  if (process.env.BENCH_PROFILE) {
    const st = warehouse.stats;
    const parts = Object.entries(st.stageMs).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');
    console.error(`profile: wall ${Math.round(ms)} ms, apply ${Math.round(st.totalApplyMs)} ms in ${st.batches} batches (${parts})`);
    st.totalApplyMs = 0;
    st.batches = 0;
    for (const k of Object.keys(st.stageMs) as (keyof typeof st.stageMs)[]) st.stageMs[k] = 0;
  }
  return ms;
}

/** pg_recvlogical from `slot` up to `endLsn`, output discarded: PostgreSQL's own decoding speed. */
async function rawDecoding(url: string, slot: string, endLsn: string): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(
    [PG_RECVLOGICAL!, '-d', url, '--slot', slot, '--start', '--endpos', endLsn, '--no-loop', '-f', '/dev/null',
      '-o', 'proto_version=1', '-o', 'publication_names=bench'],
    { stderr: 'pipe' },
  );
  const timer = setTimeout(() => proc.kill(), 300_000);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}: ${await new Response(proc.stderr).text()}`);
  return performance.now() - started;
}

async function once(run: number): Promise<RunResult> {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`bench_${run}`);
  const sql = connectSql(url, { max: 2 });
  await sql.unsafe(`CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint, product_id bigint,
    price numeric(10,2), quantity int, status text, order_date timestamptz)`);
  await fill(sql, 1, ROWS);
  const slot = `bench_${run}`; // slots are cluster-wide: one per run's database
  const rawSlot = `bench_raw_${run}`;
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-bench-'));
  const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: slot });
  try {
    const copyMs = await ducktail(url, slot, warehouse, 0);
    if (PG_RECVLOGICAL) await sql`SELECT pg_create_logical_replication_slot(${rawSlot}, 'pgoutput')`;
    for (let from = ROWS + 1; from <= 2 * ROWS; from += TXN_ROWS) await fill(sql, from, Math.min(from + TXN_ROWS - 1, 2 * ROWS));
    const [{ end }] = (await sql`SELECT pg_current_wal_insert_lsn()::text AS end`) as unknown as [{ end: string }];
    let catchUpMs = 0;
    let rawMs: number | null = null;
    const readers = [
      async () => (catchUpMs = await ducktail(url, slot, warehouse, ROWS)),
      async () => {
        if (PG_RECVLOGICAL) rawMs = await rawDecoding(url, rawSlot, end);
      },
    ];
    if (run % 2 === 1) readers.reverse();
    for (const read of readers) await read();
    return { copy: rate(ROWS, copyMs), catchUp: rate(ROWS, catchUpMs), raw: rawMs === null ? null : rate(ROWS, rawMs) };
  } finally {
    await warehouse.close();
    await sql`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN (${slot}, ${rawSlot})`;
    await sql.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => `${Math.round(n)} rows/s`;
const results: RunResult[] = [];
if (!PG_RECVLOGICAL) console.log('pg_recvlogical not found (Debian: postgresql-client): no raw-decoding ceiling');
for (let i = 0; i < RUNS; i++) {
  const r = await once(i);
  results.push(r);
  const raw = r.raw === null ? '' : `, pg_recvlogical ${fmt(r.raw)} (ducktail/raw ${(r.catchUp / r.raw).toFixed(2)})`;
  console.log(`run ${i + 1}: initial copy ${fmt(r.copy)}, catch-up ${fmt(r.catchUp)}${raw}`);
}
const raws = results.flatMap((r) => (r.raw === null ? [] : [r.raw]));
const ratios = results.flatMap((r) => (r.raw === null ? [] : [r.catchUp / r.raw]));
console.log(
  `median of ${RUNS} runs, ${ROWS} rows, ${TXN_ROWS}-row transactions, inline bus: ` +
    `initial copy ${fmt(median(results.map((r) => r.copy)))}, catch-up ${fmt(median(results.map((r) => r.catchUp)))}` +
    (raws.length ? `, pg_recvlogical ${fmt(median(raws))}, ducktail/raw ${median(ratios).toFixed(2)}` : ''),
);
await stopPostgres();
