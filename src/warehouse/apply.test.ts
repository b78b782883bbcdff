import { describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, ChangeBatch, TableSchema } from '../change/index.ts';
import { type TupleValue, UNCHANGED } from '../change/index.ts';
import { createWarehouse, type Warehouse } from './index.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';

const ORDERS: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { key: true, name: 'order_id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'price', typeOid: 1700, typeMod: ((10 << 16) | 2) + 4 },
    { key: false, name: 'note', typeOid: 25, typeMod: -1 },
    { key: false, name: 'order_date', typeOid: 1184, typeMod: -1 },
    { key: false, name: 'payload', typeOid: 17, typeMod: -1 },
  ],
};

const { dirs, open } = tempWarehouses();

async function warehouse(path?: string): Promise<{ w: Warehouse; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-apply-'));
  dirs.push(dir);
  const p = path ?? join(dir, 'w.duckdb');
  const w = await createWarehouse({ path: p, memoryLimit: '256MB', threads: 1, stream: 'slot_a' });
  open.push(w);
  return { w, path: p };
}

function change(op: Change['op'], lsn: bigint, seq: number, row: TupleValue[], oldKey?: TupleValue[]): Change {
  return { op, table: 'public.orders', row, lsn, seq, commitTimeUs: 1_795_474_996_123_456n, ...(oldKey ? { oldKey } : {}) };
}

function batch(changes: Change[], ackLsn?: bigint): ChangeBatch {
  return { tables: new Map([['public.orders', ORDERS]]), changes, ...(ackLsn !== undefined ? { ackLsn } : {}) };
}

async function rows(w: Warehouse, sql: string): Promise<unknown[][]> {
  const c = await w.connect();
  try {
    return (await c.runAndReadAll(sql)).getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
  } finally {
    c.closeSync();
  }
}

describe('BatchApplier', () => {
  test('inserts, updates, deletes land exactly, with history and exact types', async () => {
    const { w } = await warehouse();
    await w.apply(
      batch([
        change('I', 100n, 0, ['1', '10.50', 'a', '2026-11-23 23:03:16.123456+00', '\\x0102']),
        change('I', 100n, 1, ['2', '20.00', 'b', '2026-11-23 23:03:17+00', null]),
      ], 110n),
    );
    await w.apply(
      batch([
        change('U', 200n, 0, ['1', '11.25', 'a2', '2026-11-23 23:03:16.123456+00', '\\x0102']),
        change('D', 200n, 1, ['2', null, null, null, null]),
        change('I', 200n, 2, ['3', '30.00', 'c', '2026-11-23 23:03:18+00', null]),
      ], 210n),
    );
    expect(await rows(w, 'SELECT order_id, price, note, order_date, hex(payload) FROM public.orders ORDER BY 1')).toEqual([
      ['1', '11.25', 'a2', '2026-11-23 23:03:16.123456+00', '0102'],
      ['3', '30.00', 'c', '2026-11-23 23:03:18+00', null],
    ]);
    expect(await rows(w, 'SELECT order_id, _op, _lsn, _seq FROM history.orders ORDER BY _lsn, _seq')).toEqual([
      ['1', 'I', '100', '0'], ['2', 'I', '100', '1'], ['1', 'U', '200', '0'], ['2', 'D', '200', '1'], ['3', 'I', '200', '2'],
    ]);
    expect(w.progress.current).toEqual({ lsn: 200n, seq: 2, ackLsn: 210n });
  });

  test("the next batch's BEGIN sent early: it sees what another connection committed meanwhile; the writer's other users run between applies", async () => {
    const { w } = await warehouse();
    await w.apply(batch([change('I', 100n, 0, ['1', '1.00', 'a', '2026-01-01 00:00:00+00', null])], 110n));
    // After the apply (its BEGIN for the next batch sent), another connection adds a row (as a copy lane's chunk does).
    const c = await w.connect();
    await c.run(`INSERT INTO "_hot"."public.orders" (order_id, price, note, order_date) VALUES (2, 2.00, 'b', '2026-01-01 00:00:00+00')`);
    c.closeSync();
    // Its unchanged TOAST value is read from the mirror: a transaction whose snapshot predates the row fails (TOAST_BASE_MISSING).
    await w.apply(batch([change('U', 200n, 0, ['2', '2.50', UNCHANGED, '2026-01-01 00:00:00+00', null])], 210n));
    expect(await rows(w, 'SELECT order_id, price, note FROM public.orders ORDER BY 1')).toEqual([['1', '1.00', 'a'], ['2', '2.50', 'b']]);
    // Between applies: a transaction of its own on the writer, and the position's reads.
    await w.exclusive(async (conn) => {
      await conn.run('BEGIN TRANSACTION');
      await conn.run(`UPDATE "_hot"."public.orders" SET note = 'x' WHERE order_id = 1`);
      await conn.run('COMMIT');
    });
    expect(await w.progress.snapshotState('slot_a')).toEqual({ status: 'none', consistentPoint: 0n, rows: 0 });
    await w.apply(batch([change('I', 300n, 0, ['3', '3.00', 'c', '2026-01-01 00:00:00+00', null])], 310n));
    expect(await w.progress.kafkaOffsets()).toEqual([]);
    await w.apply(batch([change('D', 400n, 0, ['3', null, null, null, null])], 410n));
    expect(await rows(w, 'SELECT order_id, note FROM public.orders ORDER BY 1')).toEqual([['1', 'x'], ['2', 'b']]);
    expect(await rows(w, 'SELECT order_id, _op, _lsn FROM history.orders ORDER BY _lsn')).toEqual([
      ['1', 'I', '100'], ['2', 'U', '200'], ['3', 'I', '300'], ['3', 'D', '400'],
    ]);
    expect(w.progress.current).toEqual({ lsn: 400n, seq: 0, ackLsn: 410n });
  });

  test('a replayed batch is skipped and the position survives a reopen', async () => {
    const { w, path } = await warehouse();
    const b = batch([change('I', 100n, 0, ['1', '1.00', 'x', '2026-01-01 00:00:00+00', null])], 110n);
    await w.apply(b);
    await w.apply(b);
    await w.close();
    open.length = 0;
    const { w: again } = await warehouse(path);
    expect(again.progress.current).toEqual({ lsn: 100n, seq: 0, ackLsn: 110n });
    await again.apply(b);
    expect(await rows(again, 'SELECT count(*) FROM orders')).toEqual([['1']]);
    expect(await rows(again, 'SELECT count(*) FROM history.orders')).toEqual([['1']]);
  });

  test('a transaction split over two batches resumes mid-way without duplicates', async () => {
    const { w } = await warehouse();
    const all = [0, 1, 2, 3].map((i) => change('I', 300n, i, [String(i), '1.00', null, '2026-01-01 00:00:00+00', null]));
    await w.apply(batch(all.slice(0, 2)));
    await w.apply(batch(all, 310n)); // the server replays the whole transaction after a crash
    expect(await rows(w, 'SELECT count(*) FROM orders')).toEqual([['4']]);
    expect(await rows(w, 'SELECT count(*) FROM history.orders')).toEqual([['4']]);
  });

  test('unchanged TOAST values are filled from the current row, never NULL', async () => {
    const { w } = await warehouse();
    const big = 'x'.repeat(10_000);
    await w.apply(batch([change('I', 100n, 0, ['1', '1.00', big, '2026-01-01 00:00:00+00', '\\xff'])]));
    await w.apply(batch([change('U', 200n, 0, ['1', '2.00', UNCHANGED, '2026-01-01 00:00:00+00', UNCHANGED])]));
    // Within one batch: the base comes from the earlier change, including through a key change.
    await w.apply(
      batch([
        change('U', 300n, 0, ['1', '3.00', UNCHANGED, '2026-01-01 00:00:00+00', UNCHANGED]),
        change('U', 300n, 1, ['9', '4.00', UNCHANGED, '2026-01-01 00:00:00+00', UNCHANGED], ['1', null, null, null, null]),
      ]),
    );
    expect(await rows(w, 'SELECT order_id, price, length(note), hex(payload) FROM orders')).toEqual([
      ['9', '4.00', '10000', 'FF'],
    ]);
    expect(await rows(w, "SELECT count(*) FROM history.orders WHERE note IS NULL")).toEqual([['0']]);
  });

  test('an unchanged TOAST value with no base row fails loudly and changes nothing', async () => {
    const { w } = await warehouse();
    const b = batch([change('U', 100n, 0, ['5', '1.00', UNCHANGED, '2026-01-01 00:00:00+00', null])]);
    await expect(w.apply(b)).rejects.toThrow(/unchanged TOAST/);
    expect(w.progress.current.lsn).toBe(0n);
    // The warehouse still works afterwards.
    await w.apply(batch([change('I', 200n, 0, ['6', '1.00', 'ok', '2026-01-01 00:00:00+00', null])]));
    expect(await rows(w, 'SELECT order_id FROM orders')).toEqual([['6']]);
  });

  test('truncate empties the mirror and snapshot rows apply with their markers', async () => {
    const { w } = await warehouse();
    await w.apply({
      ...batch([
        change('T', 0n, 0, []),
        change('R', 0n, 0, ['1', '1.00', 'a', '2026-01-01 00:00:00+00', null]),
        change('R', 0n, 1, ['2', '1.00', 'b', '2026-01-01 00:00:00+00', null]),
      ]),
      snapshot: { slot: 'slot_a', status: 'copying', consistentPoint: 50n, rows: 0 },
    });
    expect(await w.progress.snapshotState('slot_a')).toEqual({ status: 'copying', consistentPoint: 50n, rows: 0 });
    await w.apply({ ...batch([]), snapshot: { slot: 'slot_a', status: 'done', consistentPoint: 50n, rows: 2 } });
    expect(await w.progress.snapshotState('slot_a')).toEqual({ status: 'done', consistentPoint: 50n, rows: 2 });
    await w.apply(batch([change('T', 400n, 0, []), change('I', 400n, 1, ['7', '1.00', 'z', '2026-01-01 00:00:00+00', null])]));
    expect(await rows(w, 'SELECT order_id FROM orders')).toEqual([['7']]);
    expect((await w.tables()).map((t) => [t.name, t.rowCount])).toEqual([['public.orders', 1]]);
  });

  test('text with tabs, quotes, newlines, \\N and empty strings survives staging; key changes and re-inserts in one batch', async () => {
    const { w } = await warehouse();
    const tricky = ['', '\\N', 'tab\there', 'quote " and ""', 'line\nbreak\r\n', 'back\\slash', '"', 'üñí €'];
    await w.apply(batch(tricky.map((t, i) => change('I', 100n, i, [String(i + 1), '1.00', t, null, null])), 110n));
    await w.apply(
      batch([
        change('U', 200n, 0, ['100', '2.00', 'moved', null, null], ['1', null, null, null, null]), // key 1 -> 100
        change('D', 200n, 1, ['2', null, null, null, null]),
        change('I', 200n, 2, ['2', '3.00', 'again', null, null]), // re-insert of a deleted key
        change('I', 200n, 3, ['50', '4.00', 'new', null, null]),
        change('D', 200n, 4, ['50', null, null, null, null]), // inserted and deleted in the same batch
        change('U', 200n, 5, ['3', '5.00', null, null, null]), // NULL, not the text \N
      ], 210n),
    );
    const got = await rows(w, 'SELECT order_id, price, note FROM public.orders ORDER BY order_id');
    expect(got).toEqual([
      ['2', '3.00', 'again'],
      ['3', '5.00', null],
      ...tricky.slice(3).map((t, i) => [String(i + 4), '1.00', t]),
      ['100', '2.00', 'moved'],
    ]);
    const notes = await rows(w, "SELECT note FROM history.orders WHERE _lsn = 100 ORDER BY _seq");
    expect(notes).toEqual(tricky.map((t) => [t]));
    expect(await rows(w, 'SELECT count(*) FROM history.orders')).toEqual([[String(tricky.length + 6)]]);
  });
});
