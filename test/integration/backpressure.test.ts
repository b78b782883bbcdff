// Invariant 6, bounded memory: a warehouse that stops committing stops the source from reading
// the replication socket; nothing piles up in between, and nothing is lost once it resumes.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import type { ChangeBatch } from '../../src/change/index.ts';
import { createInlineBus } from '../../src/bus/index.ts';
import { startPipeline } from '../../src/pipeline.ts';
import { connectSql } from '../../src/source/index.ts';
import { createWarehouse } from '../../src/warehouse/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { snapshotBoth, waitFor } from './compare.ts';

let url: string;
let sql: Sql;
let dir: string;

beforeAll(async () => {
  const pg = await startPostgres();
  url = await pg.createDatabase('it_backpressure');
  sql = connectSql(url, { max: 2 });
  await sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
  dir = mkdtempSync(join(tmpdir(), 'ducktail-bp-'));
});

afterAll(async () => {
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a stalled warehouse holds the source to two in-flight batches; resuming delivers everything', async () => {
  const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'it_bp' });
  let gate: Promise<void> = Promise.resolve();
  let open = () => {};
  const stalled = { ...warehouse, apply: async (b: ChangeBatch) => (await gate, warehouse.apply(b)) };
  const pipeline = startPipeline({
    warehouse: stalled,
    bus: createInlineBus(),
    source: { url, slot: 'it_bp', publication: 'it_bp', tables: [], batchRows: 1000, batchMs: 20, statusIntervalMs: 200, connectTimeoutS: 10 },
    log: () => {},
  });
  const status = pipeline.source!.status;
  try {
    await waitFor(async () => status.phase === 'streaming', 30_000, 'streaming');
    gate = new Promise<void>((resolve) => (open = resolve)); // the warehouse stops committing
    const before = warehouse.stats.rowsApplied; // the initial copy's bookkeeping

    // 300 one-row transactions: without backpressure the 20 ms ticker would cut a batch every tick.
    for (let i = 1; i <= 300; i++) await sql`INSERT INTO t VALUES (${i}, ${'v' + i})`;
    let most = 0;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, status.inflightBatches);
      await Bun.sleep(50);
    }
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
    expect(status.pendingChanges).toBeLessThanOrEqual(1000);
    expect(warehouse.stats.rowsApplied).toBe(before);

    open();
    const duck = await warehouse.connect();
    try {
      await waitFor(async () => warehouse.stats.rowsApplied - before >= 300, 30_000, 'all rows applied');
      const { source, mirror } = await snapshotBoth(sql, duck, 'public', 't');
      expect(mirror).toEqual(source);
      expect(mirror.length).toBe(300);
    } finally {
      duck.closeSync();
    }
  } finally {
    open();
    await pipeline.stop();
    await warehouse.close();
  }
});
