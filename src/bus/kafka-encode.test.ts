import { afterEach, expect, test } from 'bun:test';
import { seeded as rng } from '../../test/support/random.ts';
import { EventEncoder as ReferenceEncoder } from '../../test/support/kafka-encode-reference.ts';
import { type Change, type ColumnSchema, type TableSchema, type TupleValue, UNCHANGED } from '../change/index.ts';
import { encodeTuple, tupleBound, WireChange } from '../change/wire.ts';
import { EventEncoder } from './kafka-encode.ts';
import { partitionOf, partitionOfBytes } from './kafka-partition.ts';

// The encoder writes each event's JSON as bytes straight into its slab; the events on Kafka must stay
// exactly what the string-building encoder wrote (kcat readers, the consumer's pattern per layout): both
// encode the same generated changes here and every message must be equal byte for byte.

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

const TEXTS = [
  '', 'plain', '12.34', '2026-11-23 00:00:01+00', 'say "hi"', 'back\\slash', 'tab\there', 'line\nbreak', 'ünï ключ 鍵', '😀 emoji',
  '\u007f', '\u2028\u2029', 'ctl\u0001\u001f\u0000', '/slash/', 'x'.repeat(64), 'y'.repeat(65), 'z'.repeat(3000), `${'w'.repeat(70)}"`,
  `${'v'.repeat(70)}é`, `${'u'.repeat(70)}\u0001`, 'null', '{"a":1}', '\\x00ff', 'e\u0301', '\ud800 lone', 'lone \udfff', 'Ω≈ç√', ' ~!#$%&\'()*+,-./:;<=>?@[]^_`{|}',
  '__debezium_unavailable_value', '\u00ff\u0100',
];

const NAMES = ['id', 'order_id', 'price', 'Ünïcode', 'with "quote"', 'back\\slash', 'dot.name', 'ctl\u0001', '😀', '1', 'k'];

function valueFor(r: () => number): TupleValue {
  const x = r();
  if (x < 0.08) return null;
  if (x < 0.11) return UNCHANGED;
  if (x < 0.16) return Uint8Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256));
  if (x < 0.5) return pick(r, TEXTS);
  if (x < 0.7) return String(Math.floor((r() - 0.3) * 10 ** Math.floor(r() * 19)));
  return String.fromCodePoint(...Array.from({ length: Math.floor(r() * 90) }, () => (r() < 0.7 ? 0x20 + Math.floor(r() * 0x5f) : Math.floor(r() * 0x2ffff) % 0xd800)));
}

function tableFor(r: () => number, i: number): TableSchema {
  const n = 1 + Math.floor(r() * 9);
  const columns: ColumnSchema[] = Array.from({ length: n }, (_, j) => ({
    name: r() < 0.5 ? `${NAMES[(i + j) % NAMES.length]}${j}` : `c${j}`,
    key: j === 0 || (j === 1 && r() < 0.2),
    typeOid: pick(r, [20, 23, 25, 17, 1700, 1184]),
    typeMod: -1,
  }));
  return { schema: pick(r, ['public', 'sales', 'Ü"s']), table: pick(r, [`t${i}`, `ta\\b${i}`, `表${i}`]), columns };
}

/**
 * The change with its values as pgoutput TupleData bytes (Change.wire), as the source keeps them for Kafka;
 * undefined when a value is not well-formed Unicode (a lone surrogate: never in text decoded from UTF-8).
 */
function wired(c: Change): Change | undefined {
  const values = [...c.row, ...(c.oldKey ?? [])];
  if (!values.every((v) => typeof v !== 'string' || (v as string & { isWellFormed(): boolean }).isWellFormed())) return undefined;
  const bytes = Buffer.alloc(1 + tupleBound(c.row) + (c.oldKey ? tupleBound(c.oldKey) : 0));
  // One byte before the row: offsets into the buffer are honoured.
  const rowEnd = encodeTuple(bytes, 1, c.row);
  const oldKeyEnd = c.oldKey ? encodeTuple(bytes, rowEnd, c.oldKey) : -1;
  return new WireChange(c.op, c.table, c.lsn, c.seq, c.commitTimeUs, c.xid, { bytes, row: 1, rowEnd, oldKey: c.oldKey ? rowEnd : -1, oldKeyEnd });
}

const realNow = Date.now;
afterEach(() => {
  Date.now = realNow;
});

test('the byte-writing encoder writes every event exactly as the string-building one did, from strings and from pgoutput bytes', () => {
  const r = rng(20261207);
  let events = 0;
  let wireEvents = 0;
  for (let i = 0; i < 300; i++) {
    const table = tableFor(r, i);
    for (const mode of ['embedded', 'topic'] as const) {
      const prefix = pick(r, ['ducktail', 'p-x', 'prë"fix']);
      const version = pick(r, ['ducktail-0.1.0', 'v"ü']);
      const encoder = new EventEncoder(prefix, version, mode);
      const reference = new ReferenceEncoder(prefix, version, mode);
      const fromWire = new EventEncoder(prefix, version, mode);
      expect(encoder.layout(table)).toEqual(reference.layout(table));
      encoder.startBatch();
      reference.startBatch();
      fromWire.startBatch();
      for (let k = 0; k < 20; k++) {
        const op = pick(r, ['R', 'I', 'U', 'D', 'U', 'I', 'T'] as const);
        const lsn = op === 'R' ? 0n : pick(r, [BigInt(Math.floor(r() * 2 ** 40)), 2n ** 60n + 1n, 2n ** 53n + 3n, 1n]);
        // Now and then a row with fewer values than the layout has columns (the rest are written as null).
        const cells = r() < 0.05 ? Math.floor(r() * table.columns.length) : table.columns.length;
        const change: Change = {
          op, table: `${table.schema}.${table.table}`, row: Array.from({ length: cells }, () => valueFor(r)), lsn, seq: Math.floor(r() * 1e5),
          commitTimeUs: pick(r, [BigInt(Math.floor(r() * 2 ** 52)), 2n ** 63n - 1n, -5n, 1764057600123456n]),
          ...(r() < 0.8 ? { xid: pick(r, [Math.floor(r() * 2 ** 32), 0, 2 ** 53 + 2]) } : {}),
        };
        if (op === 'U' && r() < 0.3) change.oldKey = table.columns.map(() => valueFor(r));
        const now = pick(r, [realNow(), 0, 1, 99999999999999]);
        Date.now = () => now;
        const point = pick(r, [0n, BigInt(Math.floor(r() * 2 ** 50)), 2n ** 62n]);
        const partitions = 1 + Math.floor(r() * 7);
        const got = encoder.encode(change, table, partitions, (key) => partitionOfBytes(key, partitions), point);
        const want = reference.encode(change, table, partitions, (key) => partitionOf(key, partitions), point);
        const wire = wired(change);
        const gotWire = wire ? fromWire.encode(wire, table, partitions, (key) => partitionOfBytes(key, partitions), point) : [];
        expect(got.length).toBe(want.length);
        const hex = (m: { key: Uint8Array | string | undefined; value: Buffer }) => ({
          ...m, key: m.key === undefined ? undefined : Buffer.from(m.key).toString('hex'), value: m.value.toString('hex'),
        });
        for (let m = 0; m < got.length; m++) {
          expect(hex(got[m]!)).toEqual(hex(want[m]!));
          events++;
          if (wire) {
            expect(hex(gotWire[m]!)).toEqual(hex(want[m]!));
            wireEvents++;
          }
        }
        // Encoding from the bytes never made the values as strings.
        expect(wire === undefined || (wire as WireChange).wire !== undefined).toBe(true);
      }
      encoder.release(encoder.endBatch());
      reference.release(reference.endBatch());
      fromWire.release(fromWire.endBatch());
    }
  }
  expect(events).toBeGreaterThan(12_000);
  expect(wireEvents).toBeGreaterThan(9_000);
});

test('a value larger than a slab gets a buffer of its own, and the events around it are unchanged', () => {
  const table: TableSchema = { schema: 'public', table: 'big', columns: [{ name: 'id', key: true, typeOid: 23, typeMod: -1 }, { name: 'doc', key: false, typeOid: 25, typeMod: -1 }] };
  const encoder = new EventEncoder('p', 'v', 'topic');
  const reference = new ReferenceEncoder('p', 'v', 'topic');
  Date.now = () => 5;
  encoder.startBatch();
  reference.startBatch();
  for (const doc of ['a', 'b'.repeat(3 << 20), 'é'.repeat(1 << 20), '"'.repeat(1 << 19), 'c']) {
    const change: Change = { op: 'I', table: 'public.big', row: ['1', doc], lsn: 7n, seq: 1, commitTimeUs: 9n, xid: 3 };
    const [got] = encoder.encode(change, table, 1, () => 0, 0n);
    const [want] = reference.encode(change, table, 1, () => 0, 0n);
    const [gotWire] = encoder.encode(wired(change)!, table, 1, () => 0, 0n);
    expect(got!.value.equals(want!.value)).toBe(true);
    expect(gotWire!.value.equals(want!.value)).toBe(true);
  }
});
