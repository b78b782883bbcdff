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
import { apiClient, spawnDucktail, writeApplianceConfig } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';

let dir: string;
let sql: Sql;
let configPath: string;
let base: string;
let api: ReturnType<typeof apiClient>;
let proc: ReturnType<typeof spawnDucktail> | undefined;

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_resnapshot_${process.pid}`);
  sql = connectSql(url, { max: 4 });
  await applyDemoSchema(sql);
  // No primary key: REPLICA IDENTITY FULL, copied by page (ctid) ranges.
  await sql.unsafe(`
    CREATE TABLE notes (id int NOT NULL, body text);
    ALTER TABLE notes REPLICA IDENTITY FULL;
    INSERT INTO notes SELECT g, repeat('n', g % 50) FROM generate_series(1, 20000) g;
    ANALYZE notes;`);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-resnapshot-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = apiClient(base);
  configPath = writeApplianceConfig(dir, { url, slot: 'resnap_slot', port, source: 'copy_chunk_rows = 2000\n' });
});

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(9);
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const phase = async () => {
  try {
    return ((await (await fetch(`${base}/v1/status`)).json()) as { source: { phase: string } }).source.phase;
  } catch {
    return null;
  }
};
const resnapshot = (body: unknown) =>
  fetch(`${base}/v1/admin/resnapshot`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('POST /v1/admin/resnapshot copies one table again while orders keep changing; both end equal to the source', async () => {
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  await waitFor(async () => (await phase()) === 'streaming', 60_000, 'streaming');
  expect((await resnapshot({ table: 'public.nope' })).status).toBe(404);
  expect((await resnapshot({ tab: 'x' })).status).toBe(400);

  const stopLoad = new AbortController();
  const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal });
  await Bun.sleep(500);
  // The mirror drifts (as after a manual edit); the re-copy must bring it back.
  await sql`UPDATE notes SET body = 'changed' WHERE id <= 100`;
  const res = await resnapshot({ table: 'public.notes' });
  expect(res.status).toBe(202);
  expect(await res.json()).toEqual({ table: 'public.notes', status: 'copying' });
  await Bun.sleep(300);
  await sql`DELETE FROM notes WHERE id BETWEEN 200 AND 299`;
  await waitFor(async () => (await phase()) === 'streaming', 60_000, 'streaming after the re-copy');
  await Bun.sleep(500);
  stopLoad.abort();
  await load.done;

  const digests = {
    orders: 'SELECT count(*)::text, sum(quantity)::text, sum(order_id)::text, count(*) FILTER (WHERE status = \'paid\')::text FROM orders',
    notes: 'SELECT count(*)::text, sum(id)::text, sum(length(body))::text FROM notes',
  };
  for (const q of Object.values(digests)) {
    const [want] = await sql.unsafe(q).values();
    await waitFor(async () => JSON.stringify((await api.query(q))[0]!.map(String)) === JSON.stringify(want), 30_000, q).catch(() => {});
    expect((await api.query(q))[0]!.map(String)).toEqual(want as string[]);
  }
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);

  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'resnap_slot' });
  const duck = await w.connect();
  try {
    const rows = (await duck.runAndReadAll('SELECT id::VARCHAR AS i, body FROM notes ORDER BY id, body')).getRows();
    const expected = await sql`SELECT id::text AS i, body FROM notes ORDER BY id, body`.values();
    expect(rows).toEqual(expected);
    // Copied twice (20000 rows, then 20000 again), never a (lsn, seq) twice in the history.
    const [[copied, dups]] = (await duck.runAndReadAll(`
      SELECT (SELECT count(*) FROM history.notes WHERE _op = 'R'),
             (SELECT count(*) FROM (SELECT _lsn, _seq FROM history.notes GROUP BY ALL HAVING count(*) > 1))`)).getRows() as [[bigint, bigint]];
    expect(Number(copied)).toBe(40_000);
    expect(Number(dups)).toBe(0);
  } finally {
    duck.closeSync();
    await w.close();
  }
}, 180_000);
