// A source that reconnects but fails again each time is not ready: /readyz must not say "streaming"
// while nothing goes through. Here the warehouse refuses every batch (its DuckDB closed under it).
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceReadiness } from '../../src/appliance.ts';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { startInlinePipeline } from './inline-pipeline.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-ready-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('failing again after each reconnect: not ready after 3 failures in a row, with the error; ready while it streams', async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_ready_${process.pid}`);
  const sql = connectSql(url, { max: 1 });
  await sql`CREATE TABLE t (id int PRIMARY KEY)`;
  const p = await startInlinePipeline(dir, { url, slot: 'ready' });
  try {
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    await sql`INSERT INTO t VALUES (1)`;
    await waitFor(async () => p.warehouse.stats.rowsApplied >= 1, 10_000, 'first row applied');
    expect(sourceReadiness(p.status)).toEqual({ ready: true, detail: 'streaming' });
    await p.warehouse.close(); // every apply fails from now on
    await sql`INSERT INTO t VALUES (2)`;
    await waitFor(async () => p.status.failuresInARow >= 3, 20_000, 'three failures in a row');
    const r = sourceReadiness(p.status);
    expect(r.ready).toBe(false);
    expect(r.detail).toMatch(/^\d+ failures in a row, last: .+/);
    // One failure, then streaming again (a PostgreSQL restart looks like this): ready, the error still shown.
    expect(sourceReadiness({ ...p.status, phase: 'streaming', failuresInARow: 1 })).toEqual({ ready: true, detail: p.status.error! });
  } finally {
    await p.stop().catch(() => {});
    await sql.end({ timeout: 2 });
  }
});
