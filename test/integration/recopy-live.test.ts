import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { freePort } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { createWarehouse } from '../../src/warehouse/index.ts';
import { apiClient, spawnDucktail, writeApplianceConfig } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { expectMirrorEqual, waitFor } from './compare.ts';

/** Rows of the table copied again: small chunks, one worker, so the copy lasts while the test probes. */
const BIG = Number(process.env.RECOPY_LIVE_ROWS ?? 60_000);

let dir: string;
let sql: Sql;
let configPath: string;
let base: string;
let api: ReturnType<typeof apiClient>;
let proc: ReturnType<typeof spawnDucktail> | undefined;

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_recopy_live_${process.pid}`);
  sql = connectSql(url, { max: 4 });
  await applyDemoSchema(sql);
  await sql.unsafe(`
    CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL, body text);
    INSERT INTO big SELECT g, 0, repeat('b', g % 40) FROM generate_series(1, ${BIG}) g;
    ANALYZE big;`);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-recopy-live-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = apiClient(base);
  configPath = writeApplianceConfig(dir, { url, slot: 'live_slot', port, source: 'copy_workers = 1\ncopy_chunk_rows = 1000\n' });
}, 120_000);

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(9);
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface SourceStatus {
  phase: string;
  recopying: string[];
  snapshot: { table: string; chunksDone?: number; chunks?: number } | null;
}
async function source(): Promise<SourceStatus | null> {
  try {
    return ((await (await fetch(`${base}/v1/status`)).json()) as { source: SourceStatus }).source;
  } catch {
    return null;
  }
}

/** Updates, deletes and inserts of `big` all over its key range while it is copied (the catch-up replays them). */
function writeBig(signal: AbortSignal): Promise<number> {
  return (async () => {
    let n = 0;
    while (!signal.aborted) {
      const id = 1 + Math.floor(Math.random() * BIG);
      await sql.begin(async (tx) => {
        await tx`UPDATE big SET n = n + 1, body = body || 'x' WHERE id = ${id}`;
        await tx`DELETE FROM big WHERE id = ${id + 3}`;
        await tx`INSERT INTO big VALUES (${BIG + 1 + n}, 1, 'new') ON CONFLICT DO NOTHING`;
      });
      n++;
      await Bun.sleep(2);
    }
    return n;
  })();
}

test("a re-copy (resnapshot) and a table that joins the publication are copied while the other tables' changes stay queryable", async () => {
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  await waitFor(async () => (await source())?.phase === 'streaming', 90_000, 'streaming');

  // The mirror of big drifts (as after a manual edit); the re-copy must bring it back.
  await sql`UPDATE big SET n = -1 WHERE id <= 50`;
  const stop = new AbortController();
  const writes = writeBig(stop.signal);
  const res = await fetch(`${base}/v1/admin/resnapshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ table: 'public.big' }),
  });
  expect(res.status).toBe(202);
  await waitFor(async () => (await source())?.recopying.includes('public.big') === true, 10_000, 'the re-copy to start');

  // While big is copied, orders changes become queryable: the stream goes on for them.
  let seenDuringCopy = 0;
  for (let i = 0; i < 3; i++) {
    const [{ id }] = (await sql`INSERT INTO orders (customer_id, product_id, price, quantity, status, order_date)
      VALUES (1, 1, 9.99, ${100 + i}, 'cancelled', '1999-01-01') RETURNING order_id AS id`) as unknown as [{ id: string }];
    await waitFor(async () => (await api.query(`SELECT count(*) FROM orders WHERE order_id = ${id}`))[0]![0] == 1, 20_000, `order ${id}`);
    if ((await source())?.recopying.includes('public.big')) seenDuringCopy++;
  }
  expect(seenDuringCopy).toBeGreaterThan(0);
  expect((await source())?.phase).toBe('streaming');
  await waitFor(async () => (await source())?.recopying.length === 0, 120_000, 'the re-copy to end');
  await Bun.sleep(300); // writes after the hand-over go through the main stream
  stop.abort();
  expect(await writes).toBeGreaterThan(0);

  // A table that joins the publication (FOR ALL TABLES) is copied beside the stream too.
  await sql.unsafe(`CREATE TABLE later (id int PRIMARY KEY, v text);
    INSERT INTO later SELECT g, 'v' || g FROM generate_series(1, 5000) g;`);
  await sql`UPDATE orders SET quantity = quantity + 1 WHERE order_date = '1999-01-01'`;
  await waitFor(async () => (await api.query("SELECT sum(quantity) FROM orders WHERE order_date = '1999-01-01'"))[0]![0] == 306, 20_000, 'orders');
  await waitFor(async () => {
    try {
      return (await api.query('SELECT count(*) FROM later'))[0]![0] == 5000;
    } catch {
      return false; // not created yet
    }
  }, 60_000, 'the new table copied');
  await sql`UPDATE later SET v = 'w' WHERE id <= 10`;
  await waitFor(async () => (await source())?.recopying.length === 0, 60_000, 'the copy of the new table to end');
  expect((await source())?.phase).toBe('streaming');

  // kill -9 in the middle of a re-copy: the stream had gone past the copy's start without big's changes,
  // so the restart copies big again (its plan is recorded in the warehouse) and ends equal to the source.
  const stop2 = new AbortController();
  const writes2 = writeBig(stop2.signal);
  expect((await fetch(`${base}/v1/admin/resnapshot`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ table: 'public.big' }) })).status).toBe(202);
  await waitFor(async () => (await source())?.recopying.includes('public.big') === true, 10_000, 'the second re-copy to start');
  // Killed once some of its chunks are in, not after a fixed time: two chunks load at once, a copy may be quick.
  let inCopy = false;
  for (const until = Date.now() + 30_000; !inCopy; await Bun.sleep(5)) {
    if (Date.now() > until) throw new Error('the second re-copy made no progress');
    const s = await source();
    const p = s?.snapshot;
    inCopy = s?.recopying.includes('public.big') === true && p?.table === 'public.big' && (p.chunksDone ?? 0) >= 3 && (p.chunksDone ?? 0) < (p.chunks ?? 0);
  }
  proc.kill(9);
  await proc.exited;
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  await waitFor(async () => (await source())?.recopying.includes('public.big') === true, 90_000, 'the re-copy to start again');
  await waitFor(async () => (await source())?.recopying.length === 0, 120_000, 'the restarted re-copy to end');
  stop2.abort();
  await writes2;
  await Bun.sleep(500);
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);

  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'live_slot' });
  try {
    for (const t of ['big', 'orders', 'later']) await expectMirrorEqual(w, sql, t);
    const duck = await w.connect();
    try {
      const [[dups]] = (await duck.runAndReadAll(
        'SELECT count(*) FROM (SELECT _lsn, _seq FROM history.big GROUP BY ALL HAVING count(*) > 1)',
      )).getRows() as [[bigint]];
      expect(Number(dups)).toBe(0);
    } finally {
      duck.closeSync();
    }
  } finally {
    await w.close();
  }
}, 300_000);
