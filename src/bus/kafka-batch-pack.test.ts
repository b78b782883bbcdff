import { expect, test } from 'bun:test';
import { type Change, type ChangeBatch, type TableSchema, UNCHANGED } from '../change/index.ts';
import { encodeTuple, WireChange } from '../change/wire.ts';
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

/** A change's fields as a plain object (an unpacked change is a WireChange: its values are read through getters). */
function plain(c: Change) {
  const out: Record<string, unknown> = { op: c.op, table: c.table, row: c.row, lsn: c.lsn, seq: c.seq, commitTimeUs: c.commitTimeUs };
  if (c.oldKey) out.oldKey = c.oldKey;
  if (c.xid !== undefined) out.xid = c.xid;
  return out;
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
  for (let i = 0; i < 5; i++) expect(plain(back.changes[i]!)).toEqual(plain(batch.changes[i]!));
  expect(back.changes[1]!.row[2]).toEqual(new Uint8Array([1, 255]));
  expect(back.changes[1]!.oldKey).toEqual(['1', null, null]);
  expect(back.changes[2]!.xid).toBeUndefined();
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

test('a change the source kept as pgoutput bytes is packed as those bytes, without making its values', () => {
  const bytes = Buffer.alloc(200);
  const oldEnd = encodeTuple(bytes, 3, ['1', null, null]);
  const rowEnd = encodeTuple(bytes, oldEnd + 1, ['2', 'ünï "q"\n', UNCHANGED]);
  const change = new WireChange('U', 'public.orders', 100n, 1, 5n, 9, { bytes, row: oldEnd + 1, rowEnd, oldKey: 3, oldKeyEnd: oldEnd });
  const batch: ChangeBatch = { tables: new Map([['public.orders', orders]]), changes: [change] };
  const packed = packBatch(batch, new TableIds());
  expect(change.wire).toBeDefined(); // its values were not decoded (a set row would drop the bytes)
  expect(packed.rows.length).toBe(rowEnd - oldEnd - 1 + oldEnd - 3);
  const back = unpackBatch(structuredClone(packed), new Map());
  expect(plain(back.changes[0]!)).toEqual({
    op: 'U', table: 'public.orders', row: ['2', 'ünï "q"\n', UNCHANGED], oldKey: ['1', null, null], lsn: 100n, seq: 1, commitTimeUs: 5n, xid: 9,
  });
  const now = Date.now;
  Date.now = () => 7;
  try {
    const a = new EventEncoder('p', 'v', 'topic').encode(back.changes[0]!, orders, 3, () => 0, 0n);
    const b = new EventEncoder('p', 'v', 'topic').encode(plain(back.changes[0]!) as unknown as Change, orders, 3, () => 0, 0n);
    expect(a.map((m) => m.value.toString())).toEqual(b.map((m) => m.value.toString()));
  } finally {
    Date.now = now;
  }
});

test('setting the values of a wire change drops its bytes: they never disagree', () => {
  const bytes = Buffer.alloc(64);
  const rowEnd = encodeTuple(bytes, 0, ['1', 'a']);
  const change = new WireChange('I', 't', 1n, 0, 0n, undefined, { bytes, row: 0, rowEnd, oldKey: -1, oldKeyEnd: -1 });
  expect(change.oldKey).toBeUndefined();
  change.row = ['1', 'b'];
  expect(change.wire).toBeUndefined();
  expect(change.row).toEqual(['1', 'b']);
  expect(change.oldKey).toBeUndefined();
});
