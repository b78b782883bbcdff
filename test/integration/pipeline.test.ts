import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { connectSql, readSlot } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { expectMirrorEqual, waitFor } from './compare.ts';
import { type InlinePipeline, startInlinePipeline } from './inline-pipeline.ts';

let url: string;
let sql: Sql;
let dir: string;
const SLOT = 'it_pipeline';

function start(
  timing: { batchMs: number; statusIntervalMs: number; batchAdaptive?: boolean; confirmIntervalMs?: number } = { batchMs: 50, statusIntervalMs: 200 },
): Promise<InlinePipeline> {
  return startInlinePipeline(dir, { url, slot: SLOT, publication: 'it_pub', batchRows: 500, ...timing });
}

beforeAll(async () => {
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_pipeline_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ducktail-it-'));
  await sql.unsafe(`
    CREATE TABLE items (id bigint PRIMARY KEY, price numeric(10,2), qty int, note text, at timestamptz, blob bytea, flag boolean);
    CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
    ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
    INSERT INTO items SELECT g, g * 1.25, g % 7, 'row ' || g, '2026-11-23 10:00:00.123456+00'::timestamptz + g * interval '1 second', '\\x01ff', g % 2 = 0
      FROM generate_series(1, 2500) g;
    INSERT INTO docs VALUES (1, 'big', repeat('abcdefghij', 5000)), (2, 'small', 'x');
  `);
});

afterAll(async () => {
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('inline pipeline against a real PostgreSQL', () => {
  test('copies existing rows, streams changes, keeps TOAST, confirms only what is applied, resumes without duplicates', async () => {
    const p = await start();
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    await expectMirrorEqual(p.warehouse, sql, 'items');
    await expectMirrorEqual(p.warehouse, sql, 'docs');
    // The copy's progress as /v1/status shows it: the last table copied, all its rows, done.
    const copied = p.status.snapshot!;
    expect(copied.etaS).toBe(0);
    expect(copied.rows).toBe(copied.table === 'public.items' ? 2500 : 2);

    await sql.unsafe(`
      UPDATE items SET price = price + 1, note = NULL WHERE id % 10 = 0;
      DELETE FROM items WHERE id % 15 = 0;
      INSERT INTO items VALUES (9001, 0.01, 1, 'new', now(), NULL, NULL);
      UPDATE items SET id = 9002 WHERE id = 1;
      UPDATE docs SET title = 'big v2' WHERE id = 1;
    `);
    await sql.begin(async (tx) => {
      for (let i = 0; i < 1200; i++) await tx`INSERT INTO items VALUES (${10_000 + i}, 1.00, 1, 'tx', now(), NULL, true)`;
    });
    await expectMirrorEqual(p.warehouse, sql, 'items');
    await expectMirrorEqual(p.warehouse, sql, 'docs');

    const duck = await p.warehouse.connect();
    const nullBodies = await duck.runAndReadAll("SELECT count(*) FROM history.docs WHERE body IS NULL");
    expect(Number(nullBodies.getRows()[0]![0])).toBe(0);
    const historyCount = Number((await duck.runAndReadAll('SELECT count(*) FROM history.items')).getRows()[0]![0]);
    duck.closeSync();

    // The slot's confirmed position moves forward once the changes are committed in DuckDB.
    const lastApplied = p.warehouse.progress.current.ackLsn;
    await waitFor(async () => ((await readSlot(sql, SLOT))?.confirmedFlushLsn ?? 0n) >= lastApplied, 10_000, 'slot confirm');
    await p.stop();

    // Changes while ducktail is down, then a restart: it resumes from the slot, nothing twice.
    await sql`UPDATE items SET qty = qty + 100 WHERE id <= 50`;
    const again = await start();
    await expectMirrorEqual(again.warehouse, sql, 'items');
    const duck2 = await again.warehouse.connect();
    const after = Number((await duck2.runAndReadAll('SELECT count(*) FROM history.items')).getRows()[0]![0]);
    const dupes = await duck2.runAndReadAll(
      "SELECT count(*) FROM (SELECT _lsn, _seq FROM history.items WHERE _op <> 'R' GROUP BY ALL HAVING count(*) > 1)",
    );
    duck2.closeSync();
    const changedWhileDown = Number((await sql`SELECT count(*)::int AS n FROM items WHERE id <= 50 AND id <> 1`)[0]!.n);
    expect(after - historyCount).toBe(changedWhileDown);
    expect(Number(dupes.getRows()[0]![0])).toBe(0);
    await again.stop();
  });

  test('a clean stop publishes the pending batch and confirms it to the slot', async () => {
    // Neither timed nor adaptive batches nor timed status updates: only the shutdown can publish and confirm.
    const p = await start({ batchMs: 600_000, statusIntervalMs: 600_000, batchAdaptive: false });
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    const before = (await readSlot(sql, SLOT))!.confirmedFlushLsn;
    await sql`INSERT INTO items VALUES (20001, 2.00, 1, 'last', now(), NULL, NULL)`;
    await waitFor(async () => p.status.pendingChanges === 1, 10_000, 'insert received');
    expect(p.warehouse.stats.rowsApplied).toBe(0); // still pending in the source
    await p.stop();
    const applied = p.warehouse.stats.rowsApplied;
    const ackLsn = p.warehouse.progress.current.ackLsn;
    const confirmed = (await readSlot(sql, SLOT))!.confirmedFlushLsn;
    expect(applied).toBe(1);
    expect(ackLsn).toBeGreaterThan(before);
    expect(confirmed).toBeGreaterThanOrEqual(ackLsn);
    const again = await start();
    await expectMirrorEqual(again.warehouse, sql, 'items');
    await again.stop();
  });

  test('adaptive batching: a commit on a quiet stream is applied and confirmed without waiting for batch_ms or status_interval_ms', async () => {
    const p = await start({ batchMs: 600_000, statusIntervalMs: 600_000 });
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    const before = p.warehouse.stats.rowsApplied;
    await sql`INSERT INTO items VALUES (20002, 3.00, 1, 'fresh', now(), NULL, NULL)`;
    await waitFor(async () => p.warehouse.stats.rowsApplied > before, 5_000, 'insert applied');
    const ackLsn = p.warehouse.progress.current.ackLsn;
    // Rate-limited prompt confirm (about once a second), although status_interval_ms is 10 minutes.
    await waitFor(async () => (await readSlot(sql, SLOT))!.confirmedFlushLsn >= ackLsn, 5_000, 'confirmed');
    await p.stop();
  });

  test('a restart resumes where the warehouse stands: work applied but not yet confirmed is not sent again', async () => {
    // The first durable position is confirmed at once, later ones not for 10 minutes.
    const p = await start({ batchMs: 50, statusIntervalMs: 600_000, confirmIntervalMs: 600_000 });
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    await sql`INSERT INTO items VALUES (20003, 1.00, 1, 'confirmed', now(), NULL, NULL)`;
    await waitFor(async () => (await readSlot(sql, SLOT))!.confirmedFlushLsn >= p.warehouse.progress.current.ackLsn, 5_000, 'first confirm');
    const applied = p.warehouse.stats.rowsApplied;
    await sql`INSERT INTO items VALUES (20004, 1.00, 1, 'applied, not confirmed', now(), NULL, NULL)`;
    await waitFor(async () => p.warehouse.stats.rowsApplied > applied, 5_000, 'second insert applied');
    const durable = p.warehouse.progress.current.ackLsn;
    expect((await readSlot(sql, SLOT))!.confirmedFlushLsn).toBeLessThan(durable);

    // The connection dies (as in a crash of the source side): the slot replays from its confirmed position.
    const skipped = p.warehouse.stats.rowsSkipped;
    await sql`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = ${SLOT}`;
    await waitFor(async () => p.status.restarts > 0 && p.status.phase === 'streaming', 15_000, 'reconnected');
    await sql`INSERT INTO items VALUES (20005, 1.00, 1, 'after the restart', now(), NULL, NULL)`;
    await expectMirrorEqual(p.warehouse, sql, 'items');
    // Resumed at the warehouse's position: the server skipped the applied transaction, nothing was re-read.
    expect(p.warehouse.stats.rowsSkipped).toBe(skipped);
    await waitFor(async () => (await readSlot(sql, SLOT))!.confirmedFlushLsn >= durable, 5_000, 'durable position confirmed');
    await p.stop();
  });
});
