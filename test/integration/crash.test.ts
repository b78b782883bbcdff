import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { freePort } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { apiClient, sourceOrders, spawnDucktail, waitReady } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';

let dir: string;
let sql: Sql;
let configPath: string;
let api: ReturnType<typeof apiClient>;
let base: string;

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_crash_${process.pid}`);
  sql = connectSql(url, { max: 4 });
  await applyDemoSchema(sql);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-crash-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = apiClient(base);
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
  return spawnDucktail(['run', '--config', configPath], { cwd: dir });
}

test('kill -9 under load, restart: the warehouse equals the source row for row, nothing applied twice', async () => {
  const stopLoad = new AbortController();
  const load = createWorkload(sql, { rate: 400, signal: stopLoad.signal });
  await Bun.sleep(500); // rows exist before the first start: they arrive through the initial copy

  let proc = spawnAppliance();
  await waitReady(proc, api);
  await waitFor(async () => (await api.count('orders')) > 200, 30_000, 'rows flowing');
  proc.kill(9);
  expect(await proc.exited).not.toBe(0);

  await Bun.sleep(700); // the source keeps changing while ducktail is down
  proc = spawnAppliance();
  await waitReady(proc, api);
  await Bun.sleep(1000);
  stopLoad.abort();
  await load.done;
  expect(load.stats().orders).toBeGreaterThan(300);
  expect(load.stats().updates).toBeGreaterThan(0);

  const expected = await sourceOrders(sql);
  await waitFor(async () => JSON.stringify(await api.orders()) === JSON.stringify(expected), 30_000, 'mirror equal to source').catch(() => {});
  expect(await api.orders()).toEqual(expected);
  expect(await api.duplicateChanges('orders')).toBe(0);

  // WAL safety figures in /v1/status (issue 8): slot lag in bytes and seconds, WAL reservation.
  const status = (await (await fetch(`${base}/v1/status`)).json()) as { source: Record<string, unknown> & { slot: Record<string, unknown> } };
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);
  expect(typeof status.source.lagBytes).toBe('number');
  expect(typeof status.source.lagSeconds).toBe('number');
  expect(status.source.slot.walStatus).toMatch(/^(reserved|extended)$/);
  expect(status.source.slot.invalidated).toBeNull();
});
