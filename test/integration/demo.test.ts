// The demo as a new user meets it: `ducktail demo` serves a growing orders count, survives kill -9
// (the warehouse equals the source after the restart), and Ctrl-C stops everything it started.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoPostgresDir, freePort, postmaster, RELOCATED_ROOT, removeCluster, startEmbeddedPostgres } from '../../src/demo/postgres.ts';
import { AppError } from '../../src/errors.ts';
import { connectSql } from '../../src/source/index.ts';
import { apiClient, sourceOrders, spawnDucktail, waitReady } from '../support/ducktail-process.ts';
import { waitFor } from './compare.ts';

let dir: string;
let port: number;
let api: ReturnType<typeof apiClient>;

/** The demo's embedded server, if one is running: its pid and port. */
const demoServer = () => postmaster(join(dir, 'data/postgres'));

const spawned: Bun.Subprocess[] = [];

function spawnDemo(rate: number, dataDir = join(dir, 'data')) {
  const proc = spawnDucktail(['demo'], {
    cwd: dir,
    env: {
      DUCKTAIL_DEMO_DATA_DIR: dataDir,
      DUCKTAIL_DEMO_PORT: String(port),
      DUCKTAIL_DEMO_RATE: String(rate),
      DUCKTAIL_LOG_LEVEL: 'warn',
    },
  });
  spawned.push(proc);
  return proc;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-demo-'));
  chmodSync(dir, 0o755); // run as root, the embedded PostgreSQL's OS user must reach it
  port = await freePort();
  api = apiClient(`http://127.0.0.1:${port}`);
});

afterAll(() => {
  for (const p of spawned) if (p.exitCode === null) p.kill(9); // a failed test must not leave processes behind
  const pm = dir ? demoServer() : null;
  if (pm) process.kill(pm.pid, 'SIGQUIT');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('demo: the orders count grows, kill -9 and restart keep the warehouse equal to the source, Ctrl-C stops all', async () => {
  let demo = spawnDemo(100);
  await waitReady(demo, api);
  const first = await api.count('orders');
  await Bun.sleep(1200);
  const second = await api.count('orders');
  expect(second).toBeGreaterThan(first);
  const status = (await (await fetch(`http://127.0.0.1:${port}/v1/status`)).json()) as {
    source: { phase: string; confirmedLsn: string };
    warehouse: { rowsApplied: number; appliedLsn: string };
  };
  expect(status.source.phase).toBe('streaming');
  expect(status.warehouse.rowsApplied).toBeGreaterThan(0);
  expect(status.warehouse.appliedLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

  demo.kill(9);
  expect(await demo.exited).not.toBe(0);
  const server = demoServer();
  expect(server).not.toBeNull(); // the embedded PostgreSQL outlives the killed demo...

  demo = spawnDemo(0.1); // ...and the next start reuses it; a slow workload so source and mirror settle
  await waitReady(demo, api);
  const sql = connectSql(`postgres://postgres:ducktail@127.0.0.1:${server!.port}/postgres`, { max: 1 });
  try {
    const same = async () => JSON.stringify(await sourceOrders(sql)) === JSON.stringify(await api.orders());
    await waitFor(same, 30_000, 'warehouse equal to source').catch(() => {});
    const source = await sourceOrders(sql);
    expect(source.length).toBeGreaterThanOrEqual(second);
    expect(await api.orders()).toEqual(source);
    expect(await api.duplicateChanges('orders')).toBe(0);
  } finally {
    await sql.end();
  }

  demo.kill('SIGINT');
  expect(await demo.exited).toBe(0);
  expect(demoServer()).toBeNull(); // the reused server was stopped too
});

describe.skipIf(process.getuid?.() !== 0)('run as root below a folder the postgres OS user cannot reach', () => {
  test('the demo keeps its cluster in /var/lib/ducktail-demo and runs', async () => {
    const hidden = join(dir, 'private');
    mkdirSync(hidden, { mode: 0o700 });
    const dataDir = join(hidden, 'data');
    const relocated = demoPostgresDir(dataDir);
    expect(relocated.relocated).toBe(true);
    expect(relocated.dir.startsWith(`${RELOCATED_ROOT}/`)).toBe(true);
    try {
      const demo = spawnDemo(20, dataDir);
      await waitReady(demo, api);
      expect(existsSync(join(relocated.dir, 'PG_VERSION'))).toBe(true);
      await waitFor(async () => (await api.count('orders')) > 0, 30_000, 'orders flowing');
      demo.kill('SIGINT');
      expect(await demo.exited).toBe(0);

      // Deleting the data dir starts over: the relocated cluster goes with it on the next start.
      writeFileSync(join(relocated.dir, 'from-the-first-run'), '');
      rmSync(dataDir, { recursive: true });
      const again = spawnDemo(20, dataDir);
      await waitReady(again, api);
      expect(existsSync(join(relocated.dir, 'from-the-first-run'))).toBe(false);
      again.kill('SIGINT');
      expect(await again.exited).toBe(0);
    } finally {
      await removeCluster(relocated.dir);
    }
  });

  test('starting PostgreSQL itself there is refused with the fix', async () => {
    const hidden = join(dir, 'private2');
    mkdirSync(hidden, { mode: 0o700 });
    const err = await startEmbeddedPostgres({ dir: join(hidden, 'pg') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('DEMO_DIR_NOT_REACHABLE');
    expect((err as Error).message).toContain(`chmod o+x ${hidden}`);
  });
});
