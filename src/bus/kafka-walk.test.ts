import { expect, test } from 'bun:test';
import { seeded as rng } from '../../test/support/random.ts';
import { type Change, type ColumnSchema, type TableSchema, type TupleValue, UNCHANGED } from '../change/index.ts';
import { type Decoded, decodeEvent, decodeEventIn, fastDecodes, registerLayout } from './kafka-decode.ts';
import { EventEncoder } from './kafka-encode.ts';

// The fast path (kafka-walk.ts: a byte walker per layout) against JSON.parse + valibot (decodeEvent(v, false)):
// for every value, the same Decoded or the same poison (code and message).

const TYPES = [16, 20, 21, 23, 25, 1043, 700, 701, 1700, 1082, 1114, 1184, 2950, 17, 114, 3802] as const;

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

const TEXTS = [
  '', 'plain', 'say "hi"', 'back\\slash', 'tab\there', 'line\nbreak', 'ünï ключ 鍵', '😀 emoji', '\u007f', '\u2028\u2029',
  'ctl\u0001\u001f', '/slash/', 'x'.repeat(300), 'null', '{"a":1}', '\\x00ff', 'e\u0301', '\ud800 lone', 'Ω≈ç√',
  '__debezium_unavailable_value',
];

/** A value for a column of `oid`: mostly valid in PostgreSQL's text form, sometimes not (poison), sometimes at the edges of `fits`. */
function valueFor(r: () => number, oid: number): TupleValue {
  const x = r();
  if (x < 0.08) return null;
  if (x < 0.11) return UNCHANGED;
  const bad = r() < 0.05;
  switch (oid) {
    case 16:
      return bad ? pick(r, ['yes', 'T', '1']) : pick(r, ['t', 'f', 'true', 'false']);
    case 20:
    case 21:
    case 23: {
      if (bad) return pick(r, ['1.5', 'abc', '', '99999999999999999999', '1e3', '+1']);
      const edge = { 20: ['9223372036854775807', '-9223372036854775808', '9223372036854775808', '999999999999999999'], 21: ['32767', '-32768', '32768', '9999'], 23: ['2147483647', '-2147483648', '2147483648', '999999999'] }[oid];
      if (r() < 0.2) return pick(r, edge);
      return String(Math.floor((r() - 0.5) * 2 * 10 ** Math.floor(r() * (oid === 21 ? 5 : oid === 23 ? 10 : 16))));
    }
    case 700:
    case 701:
    case 1700:
      if (bad) return pick(r, ['1,5', 'abc', '--1', '']);
      return pick(r, ['12.34', '-0.5', '.5', '5.', '1e10', '1E-5', '-2.5e+3', 'NaN', 'nan', 'Infinity', '-Infinity', 'INFINITY', String(r() * 1e6), '123456789012345678901234567890.123']);
    case 1082:
      return bad ? '2026-13' : pick(r, ['2026-12-07', '0044-03-15 BC', 'infinity', '-infinity', '12026-01-01']);
    case 1114:
      return bad ? '2026-12-07T10:00' : pick(r, ['2026-12-07 10:00:00', '2026-12-07 10:00:00.123456', '0044-03-15 10:00:00 BC', 'infinity']);
    case 1184:
      return bad ? '2026-12-07 10:00' : pick(r, ['2026-12-07 10:00:00+00', '2026-12-07 10:00:00.5-03:30', '1900-01-01 00:00:00+00:19:32', '-infinity', '2026-12-07 10:00:00.123456+05:45 BC']);
    case 2950:
      return bad ? 'not-a-uuid' : pick(r, ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11']);
    case 17:
      return Uint8Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * 256));
    default:
      return r() < 0.5 ? pick(r, TEXTS) : String.fromCodePoint(...Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 0x2ffff) % 0xd800));
  }
}

const NAMES = ['id', 'order_id', 'price', 'Ünïcode', 'with "quote"', 'back\\slash', 'dot.name', 'a(b)', '$x', 'constructor', 'k'];

function tableFor(r: () => number, i: number): TableSchema {
  const n = 1 + Math.floor(r() * 8);
  const columns: ColumnSchema[] = Array.from({ length: n }, (_, j) => ({
    name: j < NAMES.length && r() < 0.5 ? `${NAMES[(i + j) % NAMES.length]}${j}` : `c${j}`,
    key: j === 0,
    typeOid: j === 0 ? pick(r, [20, 23, 25]) : pick(r, TYPES),
    typeMod: -1,
  }));
  return { schema: pick(r, ['public', 'sales', 'Ü']), table: `t${i}`, columns };
}

function outcome(value: Buffer, fast: boolean | 'in'): { decoded?: Decoded; error?: { name: string; code?: string; message: string } } {
  try {
    if (fast === 'in') {
      // As the consumer reads a fetched value: where it lies among other bytes (decodeEventIn).
      const data = Buffer.concat([Buffer.from('{"before":x'), value, Buffer.from('}')]);
      return { decoded: decodeEventIn(data, 11, 11 + value.length) };
    }
    return { decoded: decodeEvent(value, fast) };
  } catch (e) {
    const err = e as Error & { code?: string };
    return { error: { name: err.constructor.name, code: err.code, message: err.message } };
  }
}

test('the fast path and JSON.parse + valibot agree on every generated event, in both event modes', () => {
  const r = rng(20261207);
  let events = 0;
  const before = fastDecodes();
  for (let i = 0; i < 300; i++) {
    const table = tableFor(r, i);
    for (const mode of ['embedded', 'topic'] as const) {
      const encoder = new EventEncoder(pick(r, ['ducktail', 'p-x']), 'ducktail-test', mode);
      if (mode === 'topic') registerLayout(encoder.layout(table).id, encoder.layout(table).value);
      encoder.startBatch();
      for (let k = 0; k < 15; k++) {
        const op = pick(r, ['R', 'I', 'U', 'D', 'U', 'I', 'T'] as const);
        const row = table.columns.map((c) => valueFor(r, c.typeOid));
        const change: Change = {
          op, table: `${table.schema}.${table.table}`, row, lsn: op === 'R' ? 0n : BigInt(Math.floor(r() * 2 ** 40)), seq: Math.floor(r() * 1e5),
          commitTimeUs: BigInt(Math.floor(r() * 2 ** 52)), ...(r() < 0.8 ? { xid: Math.floor(r() * 2 ** 32) } : {}),
        };
        if (op === 'U' && r() < 0.2) change.oldKey = table.columns.map((c) => valueFor(r, c.typeOid));
        for (const e of encoder.encode(change, table, 3, () => 0, BigInt(Math.floor(r() * 2 ** 50)))) {
          const slow = outcome(e.value, false);
          const fast = outcome(e.value, true);
          expect(fast).toEqual(slow);
          expect(outcome(e.value, 'in')).toEqual(slow);
          if (fast.decoded) {
            // Same identities downstream relies on (batches compare layouts and tables by identity).
            expect(fast.decoded.table).toBe(slow.decoded!.table);
          }
          events++;
        }
      }
      encoder.release(encoder.endBatch());
    }
  }
  expect(events).toBeGreaterThan(9000);
  // Most generated events are in the form the walker takes (no escapes, values that fit, layouts without repeated names).
  expect(fastDecodes() - before).toBeGreaterThan(events / 3);
});

test("the walker reads plain events of ducktail's encoder (no JSON.parse), and large integers as JSON.parse rounds them", () => {
  const table: TableSchema = {
    schema: 'public', table: 'orders',
    columns: [['order_id', 20, true], ['price', 1700], ['status', 25], ['at', 1184], ['blob', 17]].map(([name, typeOid, key]) => ({ name: name as string, typeOid: typeOid as number, typeMod: -1, key: !!key })),
  };
  for (const mode of ['embedded', 'topic'] as const) {
    const encoder = new EventEncoder('fast', 'test', mode);
    if (mode === 'topic') registerLayout(encoder.layout(table).id, encoder.layout(table).value);
    // lsn and position beyond 2^53: both paths read the JSON number as a double.
    const change: Change = { op: 'I', table: 'public.orders', row: ['1', '5.00', 'new', '2026-12-07 10:00:00+00', Uint8Array.of(1, 255)], lsn: 2n ** 60n + 1n, seq: 3, commitTimeUs: 1n, xid: 9 };
    const warm = decodeEvent(encoder.encode(change, table, 1, () => 0, 0n)[0]!.value); // the embedded layout is cached by the slow path
    const n = fastDecodes();
    const [e] = encoder.encode(change, table, 1, () => 0, 0n);
    const d = decodeEvent(e!.value);
    expect(fastDecodes()).toBe(n + 1);
    expect(d).toEqual(decodeEvent(e!.value, false));
    expect(d.change.row).toEqual(['1', '5.00', 'new', '2026-12-07 10:00:00+00', '\\x01ff']);
    expect(d.change.lsn).toBe(BigInt(Number(2n ** 60n + 1n)));
    expect(warm.change.row).toEqual(d.change.row);
  }
});

test("other producers' forms of the same event (key order, whitespace, escapes) decode the same through JSON.parse", () => {
  const table: TableSchema = {
    schema: 'public', table: 'kcat',
    columns: [{ name: 'id', key: true, typeOid: 23, typeMod: -1 }, { name: 'note', key: false, typeOid: 25, typeMod: -1 }],
  };
  const encoder = new EventEncoder('other', 'test', 'topic');
  registerLayout(encoder.layout(table).id, encoder.layout(table).value);
  const change: Change = { op: 'U', table: 'public.kcat', row: ['7', 'hello'], lsn: 100n, seq: 1, commitTimeUs: 5_000_000n, xid: 3 };
  const own = encoder.encode(change, table, 1, () => 0, 0n)[0]!.value;
  const expected = decodeEvent(own);
  const json = JSON.parse(own.toString()) as Record<string, unknown>;
  const reordered = { op: json.op, ts_ms: json.ts_ms, source: json.source, after: { note: 'hello', id: '7' }, before: null };
  // [form, read by the walker]: an escape in a text column is JSON's and the walker's; the others are not the encoder's form.
  const forms: [string, boolean][] = [
    [JSON.stringify(json, null, 2), false],
    [JSON.stringify(reordered), false],
    [own.toString().replace('"hello"', '"\\u0068ello"'), true],
    [own.toString().replace('"seq":1', '"seq":1.0'), false],
    [` ${own.toString()}\n`, false],
  ];
  for (const [form, fast] of forms) {
    const n = fastDecodes();
    expect(decodeEvent(Buffer.from(form))).toEqual(expected);
    expect(fastDecodes()).toBe(fast ? n + 1 : n);
  }
  // A key the walker does not expect (a column the layout does not have) is read the slow way, and ignored as before.
  const extra = own.toString().replace('"after":{"id":"7",', '"after":{"id":"7","zzz":"1",');
  expect(decodeEvent(Buffer.from(extra))).toEqual(expected);
});

test('poison stays poison with the same code and message: not JSON, not the envelope, a value that does not fit', () => {
  const table: TableSchema = {
    schema: 'public', table: 'bad',
    columns: [{ name: 'id', key: true, typeOid: 23, typeMod: -1 }, { name: 'n', key: false, typeOid: 21, typeMod: -1 }],
  };
  const encoder = new EventEncoder('bad', 'test', 'topic');
  registerLayout(encoder.layout(table).id, encoder.layout(table).value);
  const good = encoder.encode({ op: 'I', table: 'public.bad', row: ['1', '2'], lsn: 1n, seq: 0, commitTimeUs: 0n }, table, 1, () => 0, 0n)[0]!.value.toString();
  const cases: [string, string][] = [
    [good.replace('"n":"2"', '"n":"40000"'), 'BAD_VALUE'],
    [good.replace('"id":"1"', '"id":"x"'), 'BAD_VALUE'],
    [good.replace('"op":"c"', '"op":"x"'), 'NOT_ENVELOPE'],
    [good.replace('"after":{"id":"1","n":"2"}', '"after":null'), 'NOT_ENVELOPE'],
    [good.replace('"lsn":1', '"lsn":-1'), 'NOT_ENVELOPE'],
    [good.replace('"n":"2"', '"n":2'), 'NOT_ENVELOPE'],
    [good.slice(0, -1), 'NOT_JSON'],
    [`${good}x`, 'NOT_JSON'],
    [good.replace('"n":"2"', '"n":"2\u0001"'), 'NOT_JSON'],
  ];
  for (const [value, code] of cases) {
    const fast = outcome(Buffer.from(value), true);
    expect(fast.error?.code).toBe(code);
    expect(fast).toEqual(outcome(Buffer.from(value), false));
    expect(outcome(Buffer.from(value), 'in')).toEqual(fast);
  }
});

test('every truncation and thousands of byte mutations of real events: the walker and JSON.parse + valibot give the same Decoded or the same error', () => {
  const r = rng(7122026);
  const table: TableSchema = {
    schema: 'public', table: 'mut',
    columns: [['id', 20, true], ['n', 23], ['price', 1700], ['at', 1184], ['day', 1082], ['ok', 16], ['note', 25], ['u', 2950]].map(([name, typeOid, key]) => ({ name: name as string, typeOid: typeOid as number, typeMod: -1, key: !!key })),
  };
  const rows: TupleValue[][] = [
    ['1', '-42', '12.34', '2026-12-07 10:00:00.5+00', '2026-12-07', 't', 'plain', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['9223372036854775807', '2147483647', '-1e5', 'infinity', '0044-03-15 BC', 'false', 'say "hi" \\ ünï 😀', null],
    ['2', null, 'NaN', '2026-12-07 10:00:00-03:30', '12026-01-01', 'f', UNCHANGED, null],
  ];
  let fast = 0;
  let events = 0;
  const before = fastDecodes();
  for (const mode of ['embedded', 'topic'] as const) {
    const encoder = new EventEncoder('mut', 'test', mode);
    if (mode === 'topic') registerLayout(encoder.layout(table).id, encoder.layout(table).value);
    for (const op of ['I', 'U', 'D', 'R', 'T'] as const) {
      for (const row of rows) {
        const change: Change = { op, table: 'public.mut', row, lsn: 2n ** 55n + 3n, seq: 7, commitTimeUs: 1764057600123456n, xid: 99 };
        if (op === 'U') change.oldKey = rows[0]!;
        const value = encoder.encode(change, table, 1, () => 0, 123n)[0]!.value;
        const variants: Buffer[] = [value];
        // Every truncation of a payload-only value; every 7th of an embedded one (its schema block is long).
        for (let cut = 0; cut < value.length; cut += mode === 'topic' ? 1 : 7) variants.push(value.subarray(0, cut));
        for (let k = 0; k < 150; k++) {
          const m = Buffer.from(value);
          const at = mode === 'topic' ? Math.floor(r() * m.length) : m.length - 1 - Math.floor(r() * 600);
          m[at] = pick(r, [0x22, 0x5c, 0x2c, 0x7d, 0x20, 0x00, 0x30, 0x39, 0x2d, 0x75, 0x6e, 0xc3, 0xff, Math.floor(r() * 256)]);
          variants.push(m);
          if (r() < 0.3) variants.push(Buffer.concat([m.subarray(0, at), m.subarray(at + 1)])); // a byte dropped
        }
        for (const v of variants) {
          // Decoded twice in a row: the walker's memo of the last event's constant parts must not change the answer.
          const slow = outcome(v, false);
          expect(outcome(v, true)).toEqual(slow);
          expect(outcome(v, 'in')).toEqual(slow);
          expect(outcome(v, true)).toEqual(slow);
          if (slow.decoded) fast++;
          events++;
        }
      }
    }
  }
  expect(events).toBeGreaterThan(10_000);
  expect(fast).toBeGreaterThan(100);
  expect(fastDecodes() - before).toBeGreaterThan(100);
});

test('the walker keeps the last event\'s constant parts only as a shortcut: events of other tables, producers and layouts in between decode the same', () => {
  const r = rng(42);
  const tables = [0, 1, 2].map((i) => tableFor(r, 1000 + i));
  const encoders = ['a', 'b"q', 'ü'].map((p) => new EventEncoder(p, `v-${p}`, 'topic'));
  const events: Buffer[] = [];
  for (const e of encoders) for (const t of tables) registerLayout(e.layout(t).id, e.layout(t).value);
  for (let k = 0; k < 600; k++) {
    const t = pick(r, tables);
    const e = pick(r, encoders);
    const change: Change = { op: pick(r, ['I', 'U', 'D'] as const), table: `${t.schema}.${t.table}`, row: t.columns.map((c) => valueFor(r, c.typeOid)), lsn: BigInt(k), seq: k, commitTimeUs: BigInt(k * 1000), xid: k };
    events.push(e.encode(change, t, 1, () => 0, BigInt(k))[0]!.value);
  }
  for (const v of events) expect(outcome(v, true)).toEqual(outcome(v, false));
  for (const v of events) expect(outcome(v, 'in')).toEqual(outcome(v, false));
});
