import { afterEach, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/demo/postgres.ts';
import { createWarehouse } from '../../src/warehouse/index.ts';
import { spawnDucktail } from '../support/ducktail-process.ts';
import { ORDERS, orderChange } from '../support/tiering.ts';

// Kill -9 between the steps of a tier move, then run the next pass: every row is queryable exactly
// once at every point, and the leftovers of the interrupted move are gone after the next pass.
const TOTALS = 'SELECT count(*), count(DISTINCT order_id), sum(price)::VARCHAR FROM orders';
const EXPECTED = ['730', '730', String(Array.from({ length: 730 }, (_, i) => (i % 97) + 1.25).reduce((a, b) => a + b, 0).toFixed(2))];
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

async function setup(): Promise<{ dir: string; config: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-tier-kill-'));
  dirs.push(dir);
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  const changes = Array.from({ length: 730 }, (_, i) => orderChange('I', i + 1, `${(i % 97) + 1}.25`, i, 100n + BigInt(i), 0));
  await w.apply({ tables: new Map([['public.orders', ORDERS]]), changes });
  await w.close();
  const config = join(dir, 'ducktail.toml');
  writeFileSync(
    config,
    `[warehouse]\npath = "${join(dir, 'w.duckdb')}"\nmemory_limit = "256MB"\n` +
      `[tiering]\nhot_days = 30\nwarm_days = 180\nwarm_dir = "${join(dir, 'warm')}"\ncold_url = "file://${join(dir, 'cold')}"\n` +
      `grace_minutes = 0\ndeletion_vector_min_rows = 3\n[tiering.tables."public.orders"]\ntime_column = "order_date"\n` +
      `[api]\nlisten = "127.0.0.1:${await freePort()}"\n[log]\nlevel = "error"\n`,
  );
  return { dir, config };
}

async function archive(dir: string, config: string, fault?: string): Promise<{ code: number | null; stderr: string }> {
  const p = Bun.spawn([process.execPath, join(import.meta.dir, '../../src/main.ts'), 'archive', '--config', config], {
    cwd: dir,
    stdout: 'ignore',
    stderr: 'pipe',
    env: { ...process.env, TIERING_TEST_CRASH_AT: fault ?? '' },
  });
  const stderr = await new Response(p.stderr).text();
  await p.exited;
  return { code: p.signalCode === 'SIGKILL' ? -9 : p.exitCode, stderr };
}

async function inspect(dir: string): Promise<{ totals: string[]; live: Set<string> }> {
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  const c = await w.connect();
  try {
    const totals = (await c.runAndReadAll(TOTALS)).getRows()[0]!.map(String);
    const files = await c.runAndReadAll("SELECT replace(location, 'file://', '') FROM _ducktail.tier_files WHERE retired_pass IS NULL");
    return { totals, live: new Set(files.getRows().map((r) => r[0] as string)) };
  } finally {
    c.closeSync();
    await w.close();
  }
}

function parquetOnDisk(dir: string): Set<string> {
  const out = new Set<string>();
  for (const root of [join(dir, 'warm', 'current'), join(dir, 'warm', 'history'), join(dir, 'cold')]) {
    if (!existsSync(root)) continue;
    for (const rel of readdirSync(root, { recursive: true }) as string[]) if (rel.endsWith('.parquet')) out.add(join(root, rel));
  }
  return out;
}

for (const step of ['warm-written', 'warm-before-commit', 'cold-uploaded', 'cold-committed']) {
  test(`killed at ${step}: every row once, leftovers cleaned by the next pass`, async () => {
    const { dir, config } = await setup();
    const killed = await archive(dir, config, step);
    expect(killed.stderr).toBe('');
    expect(killed.code).toBe(-9);
    expect((await inspect(dir)).totals).toEqual(EXPECTED);
    const next = await archive(dir, config);
    expect(next.stderr).toBe('');
    expect(next.code).toBe(0);
    const after = await inspect(dir);
    expect(after.totals).toEqual(EXPECTED);
    expect(after.live.size).toBeGreaterThan(20);
    expect([...parquetOnDisk(dir)].sort()).toEqual([...after.live].sort());
  }, 60_000);
}

/**
 * Orders 300-304 (~300 days old, archived) updated to their own price at LSN 9000: totals unchanged, five
 * archived versions superseded. With deletion_vector_min_rows = 3 one file gets a vector even if the five
 * straddle a month.
 */
async function updateOldOrders(dir: string): Promise<void> {
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  const late = [300, 301, 302, 303, 304].map((id, k) => orderChange('U', id, `${((id - 1) % 97) + 1}.25`, id - 1, 9000n, k));
  await w.apply({ tables: new Map([['public.orders', ORDERS]]), changes: late });
  await w.close();
}

test('killed while writing deletion vectors: every row once, the orphan vector swept by the next pass', async () => {
  const { dir, config } = await setup();
  expect((await archive(dir, config)).code).toBe(0);
  // Five archived orders of one month (~300 days old) updated to the same price: totals unchanged, five deletes.
  await updateOldOrders(dir);
  const killed = await archive(dir, config, 'vector-before-commit');
  expect(killed.code).toBe(-9);
  const vectorsOnDisk = () => {
    const root = join(dir, 'warm', '_deletes');
    return existsSync(root) ? (readdirSync(root, { recursive: true }) as string[]).filter((r) => r.endsWith('.parquet')).map((r) => join(root, r)) : [];
  };
  expect(vectorsOnDisk().length).toBe(1); // written, never committed
  expect((await inspect(dir)).totals).toEqual(EXPECTED);
  expect((await archive(dir, config)).code).toBe(0);
  expect((await inspect(dir)).totals).toEqual(EXPECTED);
  const w2 = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  const c = await w2.connect();
  const live = (await c.runAndReadAll('SELECT deletion_vector FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL')).getRows().map((r) => r[0]);
  c.closeSync();
  await w2.close();
  expect(live.length).toBe(1);
  expect(vectorsOnDisk()).toEqual(live as string[]);
}, 90_000);

test('killed after copying a cold file\'s deletion vector to the cold store: the orphan copy is swept, copied again', async () => {
  const { dir, config } = await setup();
  expect((await archive(dir, config)).code).toBe(0);
  // Five orders ~300 days old (a cold file) updated to the same price: the next pass gives the file a vector.
  await updateOldOrders(dir);
  const copies = () => {
    const root = join(dir, 'cold', '_deletes');
    return existsSync(root) ? (readdirSync(root, { recursive: true }) as string[]).filter((r) => r.endsWith('.parquet')).map((r) => `file://${join(root, r)}`) : [];
  };
  const coldVectors = async () => {
    const w2 = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
    const c = await w2.connect();
    const r = await c.runAndReadAll("SELECT cold_vector FROM _ducktail.tier_files WHERE retired_pass IS NULL AND tier = 'cold' AND deletion_vector IS NOT NULL");
    c.closeSync();
    await w2.close();
    return r.getRows().map((x) => x[0]);
  };
  const killed = await archive(dir, config, 'cold-vector-uploaded');
  expect(killed.code).toBe(-9);
  expect(copies().length).toBe(1); // uploaded, never recorded
  expect(await coldVectors()).toEqual([null]);
  expect((await inspect(dir)).totals).toEqual(EXPECTED);
  await Bun.sleep(20); // older than the grace (0) by the next sweep's clock
  expect((await archive(dir, config)).code).toBe(0);
  expect((await inspect(dir)).totals).toEqual(EXPECTED);
  const recorded = await coldVectors();
  expect(recorded).toHaveLength(1);
  expect(copies()).toEqual(recorded as string[]);
}, 90_000);

test('ducktail archive against a warehouse another process holds, with nothing answering at [api] listen, says which config to give', async () => {
  const { dir, config } = await setup();
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  try {
    const r = await archive(dir, config);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nothing answered POST /v1/admin/archive on 127.0.0.1:');
    expect(r.stderr).toContain('give this command the config that process runs with');
  } finally {
    await w.close();
  }
}, 60_000);

const canMount = process.getuid?.() === 0 && process.env.DUCKTAIL_SKIP_MOUNT !== '1';
test.skipIf(!canMount)('a full disk during a warm write stops the pass with a clear error and loses nothing', async () => {
  const { dir, config } = await setup();
  const warm = join(dir, 'warm');
  mkdirSync(warm, { recursive: true });
  const mount = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', warm]);
  if (mount.exitCode !== 0) return; // no mount permission in this environment (a container without CAP_SYS_ADMIN)
  try {
    // Leave about 16 KiB free: a few months fit, then the disk is full mid-pass.
    writeFileSync(join(warm, 'filler'), Buffer.alloc(1024 * 1024 - 16 * 1024));
    const r = await archive(dir, config);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TIER_WRITE_FAILED');
    expect(r.stderr).toContain('free space in warm_dir');
    expect((await inspect(dir)).totals).toEqual(EXPECTED);
    rmSync(join(warm, 'filler'));
    expect((await archive(dir, config)).code).toBe(0);
    const after = await inspect(dir);
    expect(after.totals).toEqual(EXPECTED);
    expect([...parquetOnDisk(dir)].sort()).toEqual([...after.live].sort());
  } finally {
    Bun.spawnSync(['umount', warm]);
  }
}, 60_000);

export { spawnDucktail };
