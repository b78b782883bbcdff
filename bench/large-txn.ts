// One large transaction (issue 7 part 6): ROWS inserts of the bench's orders table committed at once
// while ducktail streams (default config: batch_rows 10k, memory_limit 2GB, 2 threads). Reports
// ducktail's peak RSS (sampled every 50 ms) and the time from COMMIT to all rows applied. Then, on
// the same WAL from their own slots, pg_recvlogical with protocol v1 (the server decodes the whole
// transaction, spilling past logical_decoding_work_mem, before sending its first change) and with
// v2 streaming (in-progress chunks sent as decoded): elapsed time, and the slots' spill/stream bytes.
// Usage: bun bench/large-txn.ts [rows=5000000] [--pg 18|15]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInlineBus } from '../src/bus/index.ts';
import { startPipeline } from '../src/pipeline.ts';
import { connectSql } from '../src/source/index.ts';
import { createWarehouse } from '../src/warehouse/index.ts';
import { startDebianPostgres } from '../test/support/postgres-debian.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';

const args = process.argv.slice(2);
const pgAt = args.indexOf('--pg');
const PG = pgAt >= 0 ? Number(args.splice(pgAt, 2)[1]) : 18;
const ROWS = Number(args[0] ?? 5_000_000);
const BIN = PG === 18 ? null : `/usr/lib/postgresql/${PG}/bin`;
const PG_RECVLOGICAL = BIN ? `${BIN}/pg_recvlogical` : Bun.which('pg_recvlogical');
const mib = (b: number) => `${Math.round(b / 1048576)} MiB`;

let url: string;
let stop: () => Promise<void>;
if (PG === 18) {
  const pg = await startPostgres();
  url = await pg.createDatabase('bench_large');
  stop = stopPostgres;
} else {
  const pg = await startDebianPostgres(PG);
  if (!pg) throw new Error(`PostgreSQL ${PG} is not installed at /usr/lib/postgresql/${PG}/bin`);
  url = pg.url;
  stop = pg.stop;
}
const sql = connectSql(url, { max: 2 });
const dir = mkdtempSync(join(tmpdir(), 'ducktail-large-'));
try {
  await sql.unsafe(`DROP TABLE IF EXISTS orders; CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint,
    product_id bigint, price numeric(10,2), quantity int, status text, order_date timestamptz)`);
  const [{ work_mem }] = (await sql`SELECT current_setting('logical_decoding_work_mem') AS work_mem`) as unknown as [{ work_mem: string }];
  const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: 'large' });
  const pipeline = startPipeline({
    warehouse,
    bus: createInlineBus(),
    source: { url, slot: 'large', publication: 'bench', tables: [], batchRows: Number(process.env.BENCH_BATCH_ROWS ?? 10_000), batchMs: 200, statusIntervalMs: 10_000, connectTimeoutS: 10 },
    log: (m) => {
      if (process.env.BENCH_VERBOSE) console.error(m);
    },
  });
  while (pipeline.source!.status.phase !== 'streaming') await Bun.sleep(10);
  for (const s of ['large_v1', 'large_v2']) await sql`SELECT pg_create_logical_replication_slot(${s}, 'pgoutput')`;
  const baseline = process.memoryUsage().rss;
  const before = warehouse.stats.rowsApplied; // the copy's reset counts as one
  let peak = baseline;
  let atPeak = process.memoryUsage();
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > peak) {
      peak = m.rss;
      atPeak = m;
    }
  }, 50);
  const t0 = performance.now();
  await sql.unsafe(`INSERT INTO orders SELECT g, g % 1000, g % 50, (g % 10000) / 100.0, 1 + g % 4, 'pending',
    '2026-11-23 00:00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, ${ROWS}) g`);
  const committed = performance.now();
  let firstAt = 0;
  while (warehouse.stats.rowsApplied - before < ROWS) {
    if (!firstAt && warehouse.stats.rowsApplied > before) firstAt = performance.now();
    if ((pipeline.source!.status.phase as string) === 'retrying') throw new Error(`source failed: ${pipeline.source!.status.error}`);
    await Bun.sleep(20);
  }
  const done = performance.now();
  clearInterval(sampler);
  await pipeline.stop();
  await warehouse.close();
  console.log(
    `PostgreSQL ${PG}, one ${ROWS}-row transaction (INSERT took ${Math.round(committed - t0)} ms), logical_decoding_work_mem ${work_mem}:`,
  );
  console.log(
    `  ducktail (proto v1, split by batch_rows): peak RSS ${mib(peak)} (${mib(baseline)} before), first rows applied ` +
      `${Math.round(firstAt - committed)} ms after COMMIT, all ${Math.round(done - committed)} ms after ` +
      `(${Math.round((ROWS / (done - committed)) * 1000)} rows/s)`,
  );
  const [{ end }] = (await sql`SELECT pg_current_wal_insert_lsn()::text AS end`) as unknown as [{ end: string }];
  if (process.env.BENCH_VERBOSE) console.log(`  at the peak: heap ${mib(atPeak.heapUsed)} of ${mib(atPeak.heapTotal)}, external ${mib(atPeak.external)}, array buffers ${mib(atPeak.arrayBuffers)}`);
  if (PG_RECVLOGICAL && !process.env.BENCH_NO_RAW) {
    for (const [slot, opts] of [['large_v1', ['proto_version=1']], ['large_v2', ['proto_version=2', 'streaming=on']]] as const) {
      const cmd = [PG_RECVLOGICAL, '-d', url, '--slot', slot, '--start', '--endpos', end, '--no-loop', '-f', '/dev/null',
        '-o', 'publication_names=bench', ...opts.flatMap((o) => ['-o', o])];
      const started = performance.now();
      const proc = Bun.spawn(cmd, { stdout: 'ignore', stderr: 'pipe' });
      if ((await proc.exited) !== 0) throw new Error(`pg_recvlogical: ${await new Response(proc.stderr).text()}`);
      const ms = performance.now() - started;
      const [st] = (await sql`SELECT spill_txns, spill_bytes, stream_txns, stream_bytes FROM pg_stat_replication_slots
        WHERE slot_name = ${slot}`) as unknown as [{ spill_txns: string; spill_bytes: string; stream_txns: string; stream_bytes: string }];
      console.log(
        `  pg_recvlogical ${opts.join(' ')}: ${Math.round(ms)} ms (${Math.round((ROWS / ms) * 1000)} rows/s); server spilled ` +
          `${mib(Number(st?.spill_bytes ?? 0))} in ${st?.spill_txns ?? '?'} txns, streamed ${mib(Number(st?.stream_bytes ?? 0))}`,
      );
    }
  }
} finally {
  await sql`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'large%'`.catch(() => {});
  await sql.end();
  await stop();
  rmSync(dir, { recursive: true, force: true });
}
