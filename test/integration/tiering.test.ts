import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { freePort } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { spawnDucktail, waitReady } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { type S3Server, startS3 } from '../support/s3.ts';
import { waitFor } from './compare.ts';

// Two years of orders, hot_days = 30, warm_days = 180, cold in S3 (s3rver), as a new user would run it.
const TOKEN = 'admin-token-0123456789';
let dir: string;
let sql: Sql;
let configPath: string;
let base: string;
let s3Port: number;
let s3: S3Server | null = null;
let proc: Bun.Subprocess | null = null;

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_tier_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  await sql`CREATE TABLE orders (order_id bigint PRIMARY KEY, price numeric(10,2) NOT NULL, note text, order_date timestamptz NOT NULL)`;
  await sql`INSERT INTO orders SELECT g, (g % 97) + 0.25, 'n' || g, now() - (g * interval '9 hours') FROM generate_series(1, 2000) g`;
  dir = mkdtempSync(join(tmpdir(), 'ducktail-it-tier-'));
  const port = await freePort();
  s3Port = await freePort();
  base = `http://127.0.0.1:${port}`;
  configPath = join(dir, 'ducktail.toml');
  writeFileSync(
    configPath,
    `[source]\nurl = "${url}"\nslot = "tier_slot"\npublication = "tier_pub"\nstatus_interval_ms = 500\n` +
      `[warehouse]\npath = "${join(dir, 'w.duckdb')}"\nbatch_ms = 50\nmemory_limit = "512MB"\n` +
      `[tiering]\nhot_days = 30\nwarm_days = 180\nwarm_dir = "${join(dir, 'warm')}"\ncold_url = "s3://ducktail-test/lake"\n` +
      `s3_endpoint = "http://127.0.0.1:${s3Port}"\ns3_access_key_id = "S3RVER"\ns3_secret_access_key = "S3RVER"\n` +
      `grace_minutes = 0\ncold_cache_dir = "${join(dir, 'cache')}"\ndeletion_vector_min_rows = 1\n` +
      `[tiering.tables."public.orders"]\ntime_column = "order_date"\n` +
      `[api]\nlisten = "127.0.0.1:${port}"\ntokens = [{ token = "${TOKEN}", scope = "admin" }]\n[log]\nlevel = "warn"\n`,
  );
}, 120_000);

afterAll(async () => {
  proc?.kill(9);
  await s3?.stop();
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const authed = { authorization: `Bearer ${TOKEN}` };
async function query(text: string): Promise<unknown[][]> {
  const res = await fetch(`${base}/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authed },
    body: JSON.stringify({ sql: text }),
  });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return ((await res.json()) as { rows: unknown[][] }).rows;
}
async function totals(): Promise<string[]> {
  return (await query('SELECT count(*), CAST(sum(price) AS VARCHAR) FROM orders'))[0]!.map(String);
}
async function sourceTotals(): Promise<string[]> {
  const [r] = await sql`SELECT count(*)::text c, sum(price)::text s FROM orders`;
  return [r!.c, r!.s];
}
async function archiveCli(): Promise<Record<string, unknown>> {
  const p = Bun.spawn([process.execPath, join(import.meta.dir, '../../src/main.ts'), 'archive', '--config', configPath], {
    cwd: dir,
    stdout: 'pipe',
    stderr: 'inherit',
    env: { ...process.env, PATH: `${join(import.meta.dir, '../../node_modules/.bin')}:${process.env.PATH}` },
  });
  const out = await new Response(p.stdout).text();
  expect(await p.exited).toBe(0);
  return JSON.parse(out) as Record<string, unknown>;
}

test('archive with S3 down, then up: nothing lost, retried, readyz degraded meanwhile; late changes and DuckDB alone', async () => {
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  const ready = { ready: async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok === true };
  await waitReady(proc, ready);
  const expected = await sourceTotals();
  await waitFor(async () => JSON.stringify(await totals().catch(() => [])) === JSON.stringify(expected), 60_000, 'copy done');

  // S3 unreachable: hot -> warm happens, warm -> cold fails and is reported; every row still answers.
  const res = await fetch(`${base}/v1/admin/archive`, { method: 'POST', headers: authed });
  expect(res.status).toBe(200);
  const first = (await res.json()) as { moved: { to: string }[]; errors: string[] };
  expect(first.moved.filter((m) => m.to === 'warm').length).toBeGreaterThan(20);
  expect(first.moved.filter((m) => m.to === 'cold')).toEqual([]);
  expect(first.errors.join()).toContain('COLD_UNREACHABLE');
  expect(await totals()).toEqual(expected);
  // Queries still answer: /readyz stays 200, degraded with the tiering reason (not 503 until the next pass).
  const readyz = await fetch(`${base}/readyz`);
  expect(readyz.status).toBe(200);
  const degraded = (await readyz.json()) as { status: string; reasons: string[] };
  expect(degraded.status).toBe('degraded');
  expect(degraded.reasons.some((r) => r.startsWith('tiering: ') && r.includes('COLD_UNREACHABLE'))).toBe(true);

  // S3 back: the CLI asks the running instance; the retry moves the old months to cold.
  s3 = await startS3({ port: s3Port });
  const second = (await archiveCli()) as { moved: { to: string }[]; errors: string[] };
  expect(second.errors).toEqual([]);
  expect(second.moved.filter((m) => m.to === 'cold').length).toBeGreaterThan(10);
  expect(await totals()).toEqual(expected);
  const recovered = (await (await fetch(`${base}/readyz`)).json()) as { reasons: string[] };
  expect(recovered.reasons.join()).not.toContain('tiering');
  const status = (await (await fetch(`${base}/v1/status`, { headers: authed })).json()) as {
    tiering: { failures: number; passes: number; tiers: Record<string, { rows: number }> };
  };
  expect(status.tiering.failures).toBe(1);
  expect(status.tiering.passes).toBe(2);
  expect(status.tiering.tiers.cold!.rows + status.tiering.tiers.warm!.rows).toBeGreaterThan(1900);

  // Late updates and deletes of archived (warm and cold) rows in PostgreSQL.
  await sql`UPDATE orders SET price = price + 1000 WHERE order_id IN (1900, 1000, 400)`;
  await sql`DELETE FROM orders WHERE order_id IN (1800, 600)`;
  const after = await sourceTotals();
  await waitFor(async () => JSON.stringify(await totals()) === JSON.stringify(after), 30_000, 'late changes visible');
  expect(Number((await query('SELECT count(*) FROM history.orders'))[0]![0])).toBe(2005);

  // DuckDB alone, on the two folders (S3's through s3rver's data dir is not a folder; the cache holds the cold copies).
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const r = await c.runAndReadAll(
    `SELECT count(*) FROM read_parquet(['${dir}/warm/current/public.orders/*/*.parquet', '${dir}/cache/ducktail-test/lake/current/public.orders/*/*.parquet'], hive_partitioning = true)`,
  );
  const archived = Number((await query("SELECT sum(row_count) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND kind = 'current'"))[0]![0]);
  expect(Number(r.getRows()[0]![0])).toBe(archived);
  c.closeSync();
  db.closeSync();

  // A pass after the late changes answers the same; the cold files' deletion vectors are copied to S3 beside the data.
  const third = (await archiveCli()) as { errors: string[]; vectors: number; vectorsToCold: number };
  expect(third.errors).toEqual([]);
  expect(third.vectors).toBeGreaterThan(0);
  expect(third.vectorsToCold).toBeGreaterThan(0);
  expect(await totals()).toEqual(after);
  const copies = await s3.client.list({ prefix: 'lake/_deletes/current/public.orders/' });
  expect(copies.contents?.length).toBe(third.vectorsToCold);

  // Restart with the cold cache wiped: cold files come back from S3 on demand.
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  await waitReady(proc, ready);
  expect(await totals()).toEqual(after);
  const tables = (await (await fetch(`${base}/v1/tables`, { headers: authed })).json()) as { tables?: unknown } | unknown[];
  expect(JSON.stringify(tables)).toContain('"rowCount":1998');
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
  proc = null;
}, 180_000);
