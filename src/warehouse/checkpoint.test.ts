import { expect, test } from 'bun:test';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, TableSchema } from '../change/index.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { createWarehouse } from './index.ts';

const { dirs, open } = tempWarehouses();

const T: TableSchema = {
  schema: 'public',
  table: 't',
  columns: [
    { key: true, name: 'id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'note', typeOid: 25, typeMod: -1 },
  ],
};
const batch = (from: number, n: number, lsn: bigint) => ({
  tables: new Map([['public.t', T]]),
  changes: Array.from({ length: n }, (_, k): Change => ({
    op: 'I', table: 'public.t', row: [String(from + k), `note ${from + k} `.repeat(8)], lsn, seq: k, commitTimeUs: 1n,
  })),
  ackLsn: lsn + 1n,
});

test('the warehouse checkpoints between applies once the WAL passes its budget, and when quiet', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-ckpt-'));
  dirs.push(dir);
  const path = join(dir, 'w.duckdb');
  const w = await createWarehouse({ path, memoryLimit: '256MB', threads: 1, stream: 's', checkpointWalMb: 1 });
  open.push(w);
  const wal = () => statSync(`${path}.wal`, { throwIfNoEntry: false })?.size ?? 0;
  let lsn = 10n;
  let id = 0;
  // DuckDB's own threshold is 4 MB: every checkpoint below it is the warehouse's.
  while (w.stats.checkpoint.checkpoints === 0 && id < 200_000) {
    await w.apply(batch(id, 2000, lsn));
    id += 2000;
    lsn += 10n;
    await Bun.sleep(1); // the scheduler runs after the apply settles
  }
  expect(w.stats.checkpoint.checkpoints).toBe(1);
  expect(wal()).toBeLessThan(1048576);
  // A WAL under the budget (but past a 16th of it) is checkpointed after a quiet second.
  await w.apply(batch(id, 1000, lsn));
  expect(wal()).toBeGreaterThan(1048576 / 16);
  expect(wal()).toBeLessThan(1048576);
  await Bun.sleep(100);
  expect(w.stats.checkpoint.checkpoints).toBe(1);
  const idleDeadline = Date.now() + 5000;
  while (w.stats.checkpoint.checkpoints < 2 && Date.now() < idleDeadline) await Bun.sleep(50);
  expect(w.stats.checkpoint.checkpoints).toBe(2);
  expect(wal()).toBe(0);
  const c = await w.connect();
  try {
    expect(Number((await c.runAndReadAll('SELECT count(*) FROM t')).getRows()[0]![0])).toBe(id + 1000);
    expect(String((await c.runAndReadAll("SELECT current_setting('checkpoint_threshold')")).getRows()[0]![0])).toMatch(/^4\.0 ?Mi?B$/);
  } finally {
    c.closeSync();
  }
}, 30_000);
