// Ingest benchmark: rows/s of the initial copy and of streaming (pgoutput -> inline bus -> DuckDB)
// against a real embedded PostgreSQL, on the demo's 7-column orders table. Prints medians of RUNS runs.
// Usage: bun bench/run.ts [rows=200000] [runs=3]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInlineBus } from '../src/bus/index.ts';
import { startPipeline } from '../src/pipeline.ts';
import { connectSql } from '../src/source/index.ts';
import { createWarehouse } from '../src/warehouse/index.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';

const ROWS = Number(process.argv[2] ?? 200_000);
const RUNS = Number(process.argv[3] ?? 3);
const TXN_ROWS = 10_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One polling step; a source that hits an error fails the benchmark instead of retrying forever. */
async function waitStep(status: { phase: string; error: string | null }): Promise<void> {
  if (status.phase === 'retrying') throw new Error(`source failed: ${status.error}`);
  await Bun.sleep(5);
}

async function once(run: number): Promise<{ snapshot: number; streaming: number }> {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`bench_${run}`);
  const sql = connectSql(url, { max: 2 });
  await sql.unsafe(`CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint, product_id bigint,
    price numeric(10,2), quantity int, status text, order_date timestamptz)`);
  const fill = (from: number, to: number) =>
    sql.unsafe(`INSERT INTO orders SELECT g, g % 1000, g % 50, (g % 10000) / 100.0, 1 + g % 4, 'pending',
      '2026-11-23 00:00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(${from}, ${to}) g`);
  await fill(1, ROWS);
  const slot = `bench_${run}`; // slots are cluster-wide: one per run's database
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-bench-'));
  const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: slot });
  const t0 = performance.now();
  const pipeline = startPipeline({
    warehouse,
    bus: createInlineBus(),
    source: { url, slot, publication: 'bench', tables: [], batchRows: 10_000, batchMs: 200, statusIntervalMs: 1000, connectTimeoutS: 10 },
    log: (m) => {
      if (process.env.BENCH_VERBOSE) console.error(m);
    },
  });
  const source = pipeline.source!;
  while (source.status.phase !== 'streaming') await waitStep(source.status);
  const snapshotMs = performance.now() - t0;

  const before = warehouse.stats.rowsApplied;
  const t1 = performance.now();
  for (let from = ROWS + 1; from <= 2 * ROWS; from += TXN_ROWS) await fill(from, Math.min(from + TXN_ROWS - 1, 2 * ROWS));
  while (warehouse.stats.rowsApplied - before < ROWS) await waitStep(source.status);
  const streamingMs = performance.now() - t1;

  await pipeline.stop();
  await warehouse.close();
  await sql`SELECT pg_drop_replication_slot(${slot})`;
  await sql.end();
  rmSync(dir, { recursive: true, force: true });
  return { snapshot: (ROWS / snapshotMs) * 1000, streaming: (ROWS / streamingMs) * 1000 };
}

const results: { snapshot: number; streaming: number }[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = await once(i);
  results.push(r);
  console.log(`run ${i + 1}: initial copy ${Math.round(r.snapshot)} rows/s, streaming ${Math.round(r.streaming)} rows/s`);
}
console.log(
  `median of ${RUNS} runs, ${ROWS} rows each (streaming in ${TXN_ROWS}-row transactions, inline bus): ` +
    `initial copy ${Math.round(median(results.map((r) => r.snapshot)))} rows/s, ` +
    `streaming ${Math.round(median(results.map((r) => r.streaming)))} rows/s`,
);
await stopPostgres();
