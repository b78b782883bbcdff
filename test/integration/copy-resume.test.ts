import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { freePort } from '../../src/demo/postgres.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { connectSql } from '../../src/source/index.ts';
import { createWarehouse } from '../../src/warehouse/index.ts';
import { apiClient, sourceOrders, spawnDucktail, writeApplianceConfig } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';

/** Seeded rows and rows per chunk: 120 chunks, so a kill lands in the middle of the copy. */
const ROWS = Number(process.env.COPY_RESUME_ROWS ?? 120_000);
const CHUNK_ROWS = 1000;

let dir: string;
let sql: Sql;
let configPath: string;
let base: string;
let api: ReturnType<typeof apiClient>;
let proc: ReturnType<typeof spawnDucktail> | undefined;

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_copy_resume_${process.pid}`);
  sql = connectSql(url, { max: 4 });
  await applyDemoSchema(sql);
  await sql.unsafe(`
    INSERT INTO orders (customer_id, product_id, price, quantity, status, order_date)
    SELECT 1 + g % 200, 1 + g % 50, 1 + (g % 1000) / 10.0, 1 + g % 5, 'pending', '2026-01-01'::timestamptz + g * interval '1 second'
      FROM generate_series(1, ${ROWS}) g;
    ANALYZE orders;`);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-copy-resume-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = apiClient(base);
  configPath = writeApplianceConfig(dir, { url, slot: 'resume_slot', port, source: `copy_workers = 2\ncopy_chunk_rows = ${CHUNK_ROWS}\n` });
});

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(9); // a failed test leaves no process
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Status {
  source: { phase: string; snapshot: { table: string; chunksDone?: number; chunks?: number } | null };
}

async function status(): Promise<Status | null> {
  try {
    return (await (await fetch(`${base}/v1/status`)).json()) as Status;
  } catch {
    return null; // not listening yet
  }
}

/** Updates, deletes and key changes all over the key range (the demo workload touches only recent orders). */
function scatteredWrites(signal: AbortSignal): Promise<number> {
  return (async () => {
    let n = 0;
    while (!signal.aborted) {
      const id = 1 + Math.floor(Math.random() * ROWS);
      await sql.begin(async (tx) => {
        await tx`UPDATE orders SET quantity = quantity + 1, status = 'paid' WHERE order_id = ${id}`;
        await tx`DELETE FROM orders WHERE order_id = ${id + 7}`;
        // Moves a row from its chunk's range to past every chunk's end (the last, open range).
        await tx`UPDATE orders SET order_id = order_id + 10000000 WHERE order_id = ${id + 13}`;
      });
      n++;
      await Bun.sleep(5);
    }
    return n;
  })();
}

test('kill -9 in the middle of the parallel copy under writes: the restart reads only the remaining chunks and ends equal to the source', async () => {
  const stopLoad = new AbortController();
  const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal });
  const scattered = scatteredWrites(stopLoad.signal);

  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  let doneAtKill = 0;
  let chunks = 0;
  for (const until = Date.now() + 60_000; doneAtKill < 15; await Bun.sleep(10)) {
    if (Date.now() > until || proc.exitCode !== null) throw new Error('the copy did not get under way');
    const s = (await status())?.source.snapshot;
    doneAtKill = s?.chunksDone ?? 0;
    chunks = s?.chunks ?? 0;
  }
  proc.kill(9);
  expect(await proc.exited).not.toBe(0);

  expect(doneAtKill).toBeLessThan(chunks); // killed in the middle, not after the copy

  await Bun.sleep(700); // the source keeps changing while ducktail is down
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  await waitFor(async () => (await status())?.source.phase === 'streaming', 90_000, 'streaming after the resumed copy');
  await Bun.sleep(500);
  stopLoad.abort();
  await load.done;
  expect(await scattered).toBeGreaterThan(10);

  // The API answers at most 100k rows: wait for equal aggregates, then compare every row in the file.
  const digest = 'SELECT count(*)::text, sum(quantity)::text, max(order_id)::text, sum(order_id)::text FROM orders';
  const [want] = await sql.unsafe(digest).values();
  await waitFor(async () => JSON.stringify((await api.query(digest))[0]!.map(String)) === JSON.stringify(want), 30_000, 'caught up')
    .catch(() => {});
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
  const expected = await sourceOrders(sql);

  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'resume_slot' });
  const duck = await w.connect();
  try {
    const mirror = await duck.runAndReadAll(`SELECT order_id, customer_id, product_id, CAST(price AS VARCHAR), quantity, status,
                                             CAST(order_date AS VARCHAR) FROM orders ORDER BY order_id`);
    const rows = (mirror.getRows() as unknown[][]).map((r) => r.map(String));
    expect(rows.length).toBe(expected.length);
    expect(rows).toEqual(expected);
    const one = async (q: string): Promise<[number, number, number, number]> =>
      (await duck.runAndReadAll(q)).getRows()[0]!.map(Number) as [number, number, number, number];
    // Chunks read before the kill kept the consistent point they were read at; the others were read after it.
    const [before, after, open, planned] = await one(`
      SELECT count(*) FILTER (WHERE c.read_at = s.consistent_point), count(*) FILTER (WHERE c.read_at > s.consistent_point),
             count(*) FILTER (WHERE NOT c.done), count(*)
        FROM _ducktail.copy_chunks c JOIN _ducktail.snapshot s USING (slot)
       WHERE s.status = 'done' AND c."table" = 'public.orders'`);
    expect(planned).toBe(chunks);
    expect(open).toBe(0);
    expect(before).toBeGreaterThanOrEqual(doneAtKill);
    expect(after).toBeGreaterThan(0);
    expect(Number(before) + Number(after)).toBe(Number(planned));
    // No chunk was read twice: every copied key once in the history, no (lsn, seq) twice.
    const [copied, keys] = await one(`SELECT count(*), count(DISTINCT order_id) FROM history.orders WHERE _op = 'R'`);
    expect(copied).toBe(keys);
    const [sumRows] = await one(`SELECT sum(rows) FROM _ducktail.copy_chunks WHERE "table" = 'public.orders'`);
    expect(copied).toBe(sumRows);
    const [dups] = await one('SELECT count(*) FROM (SELECT _lsn, _seq FROM history.orders GROUP BY ALL HAVING count(*) > 1)');
    expect(dups).toBe(0);
  } finally {
    duck.closeSync();
    await w.close();
  }
}, 240_000);
