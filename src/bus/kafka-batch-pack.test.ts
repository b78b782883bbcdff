import { expect, test } from 'bun:test';
import { type ChangeBatch, type TableSchema, UNCHANGED } from '../change/index.ts';
import { packBatch, TableIds, unpackBatch } from './kafka-batch-pack.ts';
import { EventEncoder } from './kafka-encode.ts';

const orders: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { key: true, name: 'id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'note', typeOid: 25, typeMod: -1 },
    { key: false, name: 'blob', typeOid: 17, typeMod: -1 },
  ],
};
const other: TableSchema = { schema: 's', table: 'other', columns: [{ key: true, name: 'k', typeOid: 25, typeMod: -1 }] };

function sample(): ChangeBatch {
  return {
    tables: new Map([['public.orders', orders], ['s.other', other]]),
    changes: [
      { op: 'I', table: 'public.orders', row: ['1', 'héllo "q" \u{1F600}', null], lsn: 100n, seq: 0, commitTimeUs: 1_764_057_600_123_456n, xid: 771 },
      { op: 'U', table: 'public.orders', row: ['2', UNCHANGED, new Uint8Array([1, 255])], oldKey: ['1', null, null], lsn: 100n, seq: 1, commitTimeUs: 1_764_057_600_123_456n, xid: 771 },
      { op: 'D', table: 'public.orders', row: ['2', null, null], lsn: 200n, seq: 0, commitTimeUs: 1_764_057_600_223_456n },
      { op: 'T', table: 's.other', row: [], lsn: 300n, seq: 0, commitTimeUs: 1_764_057_600_323_456n, xid: 4_000_000_000 },
      { op: 'R', table: 's.other', row: [''], lsn: 0n, seq: 5, commitTimeUs: 0n },
    ],
    ackLsn: 300n,
    copyPoint: 42n,
    snapshot: { slot: 'x', status: 'copying', consistentPoint: 41n, rows: 0 },
  };
}

test('a packed batch comes back with the same changes, tables and copy bookkeeping', () => {
  const batch = sample();
  const known = new Map<number, TableSchema>();
  // Through a structured clone, as postMessage does.
  const back = unpackBatch(structuredClone(packBatch(batch, new TableIds())), known);
  expect(back.copyPoint).toBe(42n);
  expect(back.snapshot).toEqual(batch.snapshot!);
  expect([...back.tables.keys()]).toEqual(['public.orders', 's.other']);
  expect(back.tables.get('public.orders')).toEqual(orders);
  expect(back.changes.length).toBe(5);
  expect(back.changes[0]).toEqual(batch.changes[0]!);
  expect(back.changes[1]!.row).toEqual(['2', UNCHANGED, '\\x01ff']);
  expect(back.changes[1]!.oldKey).toEqual(['1', null, null]);
  expect(back.changes[2]).toEqual(batch.changes[2]!);
  expect(back.changes[2]!.xid).toBeUndefined();
  expect(back.changes[3]).toEqual(batch.changes[3]!);
  expect(back.changes[4]).toEqual(batch.changes[4]!);
});

test('the receiver keeps one TableSchema object per sender table, a new one for a new layout', () => {
  const ids = new TableIds();
  const known = new Map<number, TableSchema>();
  const a = unpackBatch(structuredClone(packBatch(sample(), ids)), known);
  const b = unpackBatch(structuredClone(packBatch(sample(), ids)), known);
  expect(b.tables.get('public.orders')).toBe(a.tables.get('public.orders')!);
  const changed = sample();
  changed.tables.set('public.orders', { ...orders, columns: orders.columns.slice(0, 2) });
  const c = unpackBatch(structuredClone(packBatch(changed, ids)), known);
  expect(c.tables.get('public.orders')).not.toBe(a.tables.get('public.orders')!);
  expect(c.tables.get('public.orders')!.columns.length).toBe(2);
});

test('events encoded from the unpacked batch are byte for byte those of the original', () => {
  const batch = sample();
  const back = unpackBatch(structuredClone(packBatch(batch, new TableIds())), new Map());
  const now = Date.now;
  Date.now = () => 1_795_589_563_798;
  try {
    for (const mode of ['embedded', 'topic'] as const) {
      const encode = (b: ChangeBatch) => {
        const enc = new EventEncoder('p', 'v', mode);
        return b.changes.flatMap((c) => enc.encode(c, b.tables.get(c.table)!, 3, () => 0, 41n)).map((m) => [m.topic, m.partition, m.key, m.value.toString()]);
      };
      expect(encode(back)).toEqual(encode(batch));
    }
  } finally {
    Date.now = now;
  }
});
