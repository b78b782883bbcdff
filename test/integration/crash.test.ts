import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { freePort } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';

const ROOT = join(import.meta.dir, '../..');
let dir: string;
let sql: Sql;
let configPath: string;
let api: string;

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_crash_${process.pid}`);
  sql = connectSql(url, { max: 4 });
  await applyDemoSchema(sql);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-crash-'));
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  configPath = join(dir, 'ducktail.toml');
  writeFileSync(
    configPath,
    `[source]\nurl = "${url}"\nslot = "crash_slot"\npublication = "crash_pub"\nstatus_interval_ms = 500\n` +
      `[warehouse]\npath = "${join(dir, 'w.duckdb')}"\nbatch_rows = 200\nbatch_ms = 50\nmemory_limit = "512MB"\n` +
      `[tiering]\nwarm_dir = "${join(dir, 'warm')}"\n[api]\nlisten = "127.0.0.1:${port}"\n[log]\nlevel = "warn"\n`,
  );
});

afterAll(async () => {
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function spawnAppliance() {
  return Bun.spawn(['bun', join(ROOT, 'src/main.ts'), 'run', '--config', configPath], {
    cwd: dir,
    stdout: 'inherit',
    stderr: 'inherit',
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
  });
}

async function apiQuery(q: string): Promise<unknown[][]> {
  const res = await fetch(`${api}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: q }) });
  if (!res.ok) throw new Error(await res.text());
  return ((await res.json()) as { rows: unknown[][] }).rows;
}

async function ready(): Promise<boolean> {
  try {
    return (await fetch(`${api}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

async function sourceOrders(): Promise<string[][]> {
  const rows = await sql`SELECT order_id, customer_id, product_id, price::text, quantity, status, order_date::text
                          FROM orders ORDER BY order_id`.values();
  return rows.map((r) => r.map(String));
}

async function mirrorOrders(): Promise<string[][]> {
  const rows = await apiQuery(`SELECT order_id, customer_id, product_id, CAST(price AS VARCHAR), quantity, status,
                                      CAST(order_date AS VARCHAR) FROM orders ORDER BY order_id`);
  return rows.map((r) => r.map(String));
}

test('kill -9 under load, restart: the warehouse equals the source row for row, nothing applied twice', async () => {
  const stopLoad = new AbortController();
  const load = createWorkload(sql, { rate: 400, signal: stopLoad.signal });
  await Bun.sleep(500); // rows exist before the first start: they arrive through the initial copy

  let proc = spawnAppliance();
  await waitFor(ready, 60_000, 'appliance ready');
  await waitFor(async () => Number((await apiQuery('SELECT count(*) FROM orders'))[0]![0]) > 200, 30_000, 'rows flowing');
  proc.kill(9);
  expect(await proc.exited).not.toBe(0);

  await Bun.sleep(700); // the source keeps changing while ducktail is down
  proc = spawnAppliance();
  await waitFor(ready, 60_000, 'appliance ready after the crash');
  await Bun.sleep(1000);
  stopLoad.abort();
  await load.done;
  expect(load.stats().orders).toBeGreaterThan(300);
  expect(load.stats().updates).toBeGreaterThan(0);

  const expected = await sourceOrders();
  await waitFor(async () => JSON.stringify(await mirrorOrders()) === JSON.stringify(expected), 30_000, 'mirror equal to source').catch(() => {});
  expect(await mirrorOrders()).toEqual(expected);
  const dupes = await apiQuery(
    "SELECT count(*) FROM (SELECT _lsn, _seq FROM history.orders WHERE _op <> 'R' GROUP BY ALL HAVING count(*) > 1)",
  );
  expect(dupes).toEqual([[0]]);

  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
});
