import { expect, test } from 'bun:test';
import { compatibilityPartitioner } from '@platformatic/kafka';
import type { Change, TableSchema } from '../change/index.ts';
import { decodeEvent, fits, LayoutMissing, registerLayout } from './kafka-decode.ts';
import { EventEncoder } from './kafka-encode.ts';
import { decodeRecords } from './kafka-fetch.ts';
import { partitionOf } from './kafka-partition.ts';

test('the schema block carries every column fact the warehouse needs to rebuild the layout', () => {
  const table: TableSchema = {
    schema: 'public',
    table: 'evo',
    columns: [
      { name: 'id', key: true, typeOid: 23, typeMod: -1, attnum: 1 },
      { name: 'e', key: false, typeOid: 23, typeMod: -1, attnum: 2, missing: '7', hasDefault: true },
      { name: 'f', key: false, typeOid: 1184, typeMod: -1, attnum: 3, hasDefault: true },
      { name: 'm', key: false, typeOid: 99999, typeMod: -1, userType: 'enum' },
    ],
  };
  const change: Change = { op: 'I', table: 'public.evo', row: ['1', '7', null, 'happy'], lsn: 100n, seq: 0, commitTimeUs: 0n, xid: 5 };
  const [event] = new EventEncoder('t', 'test').encode(change, table, 3, () => 0, 0n);
  const decoded = decodeEvent(event!.value);
  expect(decoded.table.columns).toEqual(table.columns);
  expect(decoded.change.row).toEqual(['1', '7', null, 'happy']);
});

test('partitionOf agrees with the Java-compatible partitioner of the Kafka client on every key shape', () => {
  const keys = ['', 'a', 'ab', 'abc', 'abcd', '{"id":"1"}', '{"order_id":"123456789"}', 'ünïcødé-ключ-鍵', 'x'.repeat(300)];
  for (let i = 0; i < 2000; i++) keys.push(JSON.stringify({ id: String(i * 7919), t: 'k'.repeat(i % 13) }));
  for (const key of keys) {
    for (const n of [1, 3, 6, 7]) expect(partitionOf(key, n)).toBe(compatibilityPartitioner({ topic: '' } as never, Buffer.from(key)) % n);
  }
});

test('a payload-only event (eventSchema "topic") names its layout, which the schema topic record rebuilds', () => {
  const table: TableSchema = {
    schema: 'public',
    table: 'po',
    columns: [
      { name: 'id', key: true, typeOid: 23, typeMod: -1 },
      { name: 'price', key: false, typeOid: 1700, typeMod: 655366 },
    ],
  };
  const encoder = new EventEncoder('t', 'test', 'topic');
  const change: Change = { op: 'I', table: 'public.po', row: ['1', '2.50'], lsn: 100n, seq: 0, commitTimeUs: 0n, xid: 5 };
  const [event] = encoder.encode(change, table, 3, () => 0, 0n);
  const json = JSON.parse(event!.value.toString());
  expect(json.schema).toBeUndefined();
  expect(json.payload).toBeUndefined();
  expect(json.after).toEqual({ id: '1', price: '2.50' });
  const layout = encoder.layout(table);
  expect(json.source.layout).toBe(layout.id);
  expect(() => decodeEvent(event!.value)).toThrow(LayoutMissing);
  expect(registerLayout(layout.id, layout.value)).toBe(true);
  const decoded = decodeEvent(event!.value);
  expect(decoded.table.columns).toEqual(table.columns);
  expect(decoded.change.row).toEqual(['1', '2.50']);
  // The same layout embedded decodes to the same columns (the block on the topic is the embedded one).
  expect(decodeEvent(new EventEncoder('t', 'test').encode(change, table, 3, () => 0, 0n)[0]!.value).table.columns).toEqual(table.columns);
});

test('a payload-only event naming a layout the schema topic does not hold is poison once the topic was read', () => {
  const table: TableSchema = { schema: 'public', table: 'lost', columns: [{ name: 'id', key: true, typeOid: 23, typeMod: -1 }] };
  const change: Change = { op: 'I', table: 'public.lost', row: ['1'], lsn: 100n, seq: 0, commitTimeUs: 0n };
  const [event] = new EventEncoder('nowhere', 'test', 'topic').encode(change, table, 1, () => 0, 0n);
  const batches = [{ firstOffset: 0n, records: [{ offsetDelta: 0, value: event!.value }] }];
  expect(() => decodeRecords(batches, 0n, false)).toThrow(LayoutMissing);
  const [entry] = decodeRecords(batches, 0n, true);
  expect(entry && 'poison' in entry ? entry.poison.code : undefined).toBe('NOT_ENVELOPE');
});

test('fits: integers up to their type bounds (the short-value shortcut agrees with the BigInt check)', () => {
  for (const [oid, max] of [[21, 32767n], [23, 2147483647n], [20, 9223372036854775807n]] as const) {
    expect(fits(oid, String(max))).toBe(true);
    expect(fits(oid, String(-max - 1n))).toBe(true);
    expect(fits(oid, String(max + 1n))).toBe(false);
    expect(fits(oid, String(-max - 2n))).toBe(false);
    expect(fits(oid, '0')).toBe(true);
    expect(fits(oid, '-1')).toBe(true);
    expect(fits(oid, '1.5')).toBe(false);
  }
  expect(fits(21, '9999')).toBe(true);
  expect(fits(21, '99999')).toBe(false);
});

test('values and keys are written as JSON.stringify would, quotes, backslashes, control and non-ASCII characters included', () => {
  const table: TableSchema = { schema: 'public', table: 'q', columns: [{ name: 'k', key: true, typeOid: 25, typeMod: -1 }, { name: 'v', key: false, typeOid: 25, typeMod: -1 }] };
  for (const v of ['plain', 'say "hi"', 'back\\slash', 'tab\there', 'line\nbreak', 'ünï ключ 鍵', '\u007f', 'x'.repeat(100), '']) {
    const change: Change = { op: 'I', table: 'public.q', row: [v, v], lsn: 1n, seq: 0, commitTimeUs: 0n };
    const [event] = new EventEncoder('t', 'test', 'topic').encode(change, table, 1, () => 0, 0n);
    expect(event!.key?.toString()).toBe(JSON.stringify({ k: v }));
    expect(JSON.parse(event!.value.toString()).after).toEqual({ k: v, v });
  }
});

test('decoding gives back every value, non-ASCII and escaped ones included, in both event modes', () => {
  const table: TableSchema = { schema: 'public', table: 'q8', columns: [{ name: 'k', key: true, typeOid: 25, typeMod: -1 }, { name: 'v', key: false, typeOid: 25, typeMod: -1 }] };
  for (const mode of ['embedded', 'topic'] as const) {
    const encoder = new EventEncoder('t8', 'test', mode);
    if (mode === 'topic') registerLayout(encoder.layout(table).id, encoder.layout(table).value);
    for (const v of ['plain', 'ünï ключ 鍵 😀', 'say "hi"', '\u00e9', '\u007f', 'line\nbreak']) {
      const change: Change = { op: 'I', table: 'public.q8', row: [v, `${v}!`], lsn: 1n, seq: 0, commitTimeUs: 0n };
      const [event] = encoder.encode(change, table, 1, () => 0, 0n);
      const d = decodeEvent(event!.value);
      expect(d.change.row).toEqual([v, `${v}!`]);
      expect(d.change.table).toBe('public.q8');
      expect(d.table.columns.map((c) => c.name)).toEqual(['k', 'v']);
    }
  }
});
