import { expect, test } from 'bun:test';
import type { Change, TableSchema } from '../change/index.ts';
import type { Decoded } from './kafka-decode.ts';
import { commitSelection, type Entry, type Hold, offsetsOf, type Owned, selectBatch } from './kafka-select.ts';

const V1: TableSchema = { schema: 'public', table: 't', columns: [{ name: 'id', key: true, typeOid: 23, typeMod: -1 }] };
const V2: TableSchema = { ...V1, columns: [...V1.columns, { name: 'x', key: false, typeOid: 25, typeMod: -1 }] };

function ev(offset: number, op: Change['op'], pos: number, ord = 0, table = V1, lsn = BigInt(pos)): Entry {
  const change: Change = { op, table: 'public.t', row: op === 'T' ? [] : [String(offset)], lsn, seq: ord, commitTimeUs: 0n };
  const decoded: Decoded = { change, table, pos: BigInt(pos), ord };
  return { offset: BigInt(offset), decoded };
}

function part(partition: number, buffer: Entry[], at: { next?: number; lsn?: number; ord?: number; hold?: Hold } = {}): Owned {
  const next = BigInt(at.next ?? 0);
  return {
    topic: 'p.public.t', topicId: 'id', partition, next, readAt: next, lsn: BigInt(at.lsn ?? 0), ord: at.ord ?? -1, highWatermark: 0n, buffer, hold: at.hold ?? null,
  };
}

const ops = (changes: Change[]) => changes.map((c) => `${c.op}${String(c.row[0] ?? '')}`);

test('duplicates (at or before the stored order key) are skipped; nothing moves until the batch is committed', () => {
  const p = part(0, [ev(0, 'I', 100), ev(1, 'I', 200), ev(2, 'I', 150), ev(3, 'I', 300)], { lsn: 100, ord: 0 });
  const s = selectBatch([p], 100);
  expect(ops(s.changes)).toEqual(['I1', 'I3']);
  expect(s.duplicates).toBe(2);
  expect(p.buffer).toHaveLength(4);
  expect(p.next).toBe(0n);
  commitSelection(s);
  expect(p.buffer).toHaveLength(0);
  expect([p.next, p.lsn]).toEqual([4n, 300n]);
});

test('a truncate waits until every partition of the topic reached it; a batch holds one layout per table', () => {
  const a = part(0, [ev(0, 'I', 100), ev(1, 'T', 200)]);
  const b = part(1, [ev(0, 'I', 150, 0, V1), ev(1, 'I', 160, 0, V2)]);
  const first = selectBatch([a, b], 100);
  expect(ops(first.changes)).toEqual(['I0', 'I0']); // b's next change has another layout: cut
  commitSelection(first);
  b.buffer.push(ev(2, 'T', 200));
  const second = selectBatch([a, b], 100);
  expect(ops(second.changes)).toEqual(['I1']); // V2 first, the truncate still waits for b
  commitSelection(second);
  const third = selectBatch([a, b], 100);
  expect(ops(third.changes)).toEqual(['T']);
  commitSelection(third);
  expect([a.next, b.next]).toEqual([2n, 3n]);
});

test('an out-of-range hold skips everything but the copy reset, keeps the stored offset until the reset, then applies', () => {
  const hold: Hold = { code: 'KAFKA_OFFSET_OUT_OF_RANGE', message: 'lost', since: 0 };
  const p = part(0, [ev(10, 'I', 500), ev(11, 'T', 600), ev(12, 'I', 700)], { next: 3, hold });
  p.readAt = 10n;
  const waiting = selectBatch([p], 100);
  expect(ops(waiting.changes)).toEqual([]);
  expect(waiting.superseded).toBe(3);
  expect(offsetsOf(waiting)[0]!.next).toBe(3n); // a restart finds the gap again
  commitSelection(waiting);
  expect([p.next, p.readAt, p.hold?.code]).toEqual([3n, 13n, 'KAFKA_OFFSET_OUT_OF_RANGE']);

  p.buffer.push(ev(13, 'T', 900, 0, V1, 0n), ev(14, 'R', 900, 2, V1, 0n), ev(15, 'I', 1000));
  const copy = selectBatch([p], 100);
  expect(ops(copy.changes)).toEqual(['T', 'R14', 'I15']);
  commitSelection(copy);
  expect([p.next, p.hold]).toEqual([16n, null]);
});

test('a copy hold (layout the warehouse cannot apply) skips the table on every partition until the reset reached all of them', () => {
  const hold = (): Hold => ({ code: 'RECOPY_NEEDED', message: 'type change', since: 0 });
  const a = part(0, [ev(0, 'I', 100, 0, V2), ev(1, 'T', 900, 0, V2, 0n), ev(2, 'R', 900, 2, V2, 0n)], { hold: hold() });
  const b = part(1, [ev(0, 'U', 120, 0, V2)], { hold: hold() });
  const first = selectBatch([a, b], 100);
  expect(ops(first.changes)).toEqual([]); // the reset waits for b
  commitSelection(first);
  expect([a.next, b.next]).toEqual([1n, 1n]);
  b.buffer.push(ev(1, 'T', 900, 0, V2, 0n));
  const copy = selectBatch([a, b], 100);
  expect(ops(copy.changes)).toEqual(['T', 'R2']);
  commitSelection(copy);
  expect([a.hold, b.hold]).toEqual([null, null]);
});

test('a batch takes from every partition in turn: the first ones cannot fill every batch while the last ones wait', () => {
  const entries = (n: number, from: number) => Array.from({ length: n }, (_, i) => ev(from + i, 'I', 1000 + from + i));
  const parts = [part(0, entries(30, 0)), part(1, entries(30, 100)), part(2, entries(30, 200))];
  const s = selectBatch(parts, 12);
  expect(s.changes).toHaveLength(12);
  expect(parts.map((o) => s.taken.get(o)?.count ?? 0)).toEqual([4, 4, 4]);
  commitSelection(s);
  // Per partition, still in offset order.
  expect(parts.map((o) => o.next)).toEqual([4n, 104n, 204n]);
  // A partition with less than its share leaves the room to the others.
  const few = [part(0, entries(1, 0)), part(1, entries(30, 100))];
  expect(selectBatch(few, 12).changes).toHaveLength(12);
});
