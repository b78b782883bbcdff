import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ColumnSchema, TableSchema } from '../change/index.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { kindOf } from './columns.ts';
import { createWarehouse } from './index.ts';
import { mapColumn } from './pg-types.ts';

const { dirs, open } = tempWarehouses();

async function warehouse() {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-columns-'));
  dirs.push(dir);
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  open.push(w);
  return w;
}

const num = (p: number, s: number) => ((p << 16) | s) + 4;
/** PostgreSQL text outputs per type, parsed by JS (typed staging) or refused to SQL's fromText. */
const CASES: [string, number, number, string[]][] = [
  ['i8', 20, -1, ['0', '-1', '42', '9007199254740991', '9007199254740993', '-9223372036854775808', '9223372036854775807', '123456789012345', '-1234567890123456']],
  ['i4', 23, -1, ['0', '-2147483648', '2147483647', '7']],
  ['i2', 21, -1, ['-32768', '32767', '0']],
  ['b', 16, -1, ['t', 'f']],
  ['f8', 701, -1, ['1.5', '-0', 'NaN', 'Infinity', '-Infinity', '1e+300', '2.2250738585072014e-308', '0.1', '-123.456e-7']],
  ['n102', 1700, num(10, 2), ['0.00', '-12.34', '99999999.99', '12.3', '7', '-0.01', 'NaN']],
  ['n41', 1700, num(4, 1), ['-999.9', '0.5', '999.9']],
  ['n186', 1700, num(18, 6), ['123456789012.123456', '-1.000001', '999999999999.999999']],
  ['n', 1700, -1, ['1.5', '-0.000000000000000001', 'NaN']],
  ['d', 1082, -1, ['2026-11-23', '0001-01-01', '1999-12-31', '2000-02-29', '1969-12-31', 'infinity', '-infinity', '4713-01-01 BC']],
  ['tz', 1184, -1, [
    '2026-11-23 00:00:01+00', '2026-11-23 00:00:01.5+00', '2026-11-23 23:59:59.999999+05:30', '1969-12-31 23:59:59.123456-08',
    '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00', '2300-01-01 00:00:00.000001+00', '1900-01-01 00:00:00+00:19:32',
    '1900-01-01 12:00:00-00:19:32', 'infinity', '-infinity', '0001-01-01 00:00:00+00 BC', '2026-02-28 10:00:00.12+00',
  ]],
  ['ts', 1114, -1, ['2026-11-23 00:00:01', '2026-11-23 00:00:01.000001', '1500-06-15 12:00:00', '1960-01-01 00:00:00.9', 'infinity', '0044-03-15 12:00:00 BC']],
  ['t', 25, -1, ['', 'a\tb', 'üñí €', '\\N', 'x'.repeat(300)]],
];

test('every kind: the JS parsers store exactly what the SQL conversion of the same text stores', async () => {
  const w = await warehouse();
  const columns: ColumnSchema[] = [
    { key: true, name: 'id', typeOid: 20, typeMod: -1 },
    ...CASES.map(([name, typeOid, typeMod]) => ({ key: false, name, typeOid, typeMod })),
  ];
  const schema: TableSchema = { schema: 'public', table: 'kinds', columns };
  expect(columns.map((c) => kindOf(mapColumn(c)))).toEqual(['i64', 'i64', 'i32', 'i16', 'bool', 'f64', 'dec64', 'dec16', 'dec64', 'text', 'date', 'ts', 'ts', 'str']);
  // Row 0 is all NULL; more rows than a data chunk (2,048) so a batch spans several chunks.
  const rows = Array.from({ length: 2100 }, (_, r) => [String(r), ...CASES.map(([, , , v]) => (r === 0 ? null : v[(r - 1) % v.length]!))]);
  await w.apply({
    tables: new Map([['public.kinds', schema]]),
    changes: rows.map((row, seq) => ({ op: 'I' as const, table: 'public.kinds', row, lsn: 10n, seq, commitTimeUs: 1n })),
    ackLsn: 11n,
  });
  const c = await w.connect();
  try {
    for (const [name, typeOid, typeMod, values] of CASES) {
      const m = mapColumn({ key: false, name, typeOid, typeMod });
      const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
      const expected = await c.runAndReadAll(
        `SELECT CAST(${m.fromText('v')} AS VARCHAR) FROM (VALUES ${values.map((v, k) => `(${k}, ${lit(v)})`).join(', ')}) t(k, v) ORDER BY k`,
      );
      const got = await c.runAndReadAll(`SELECT CAST("${name}" AS VARCHAR) FROM kinds WHERE id BETWEEN 1 AND ${values.length} ORDER BY id`);
      expect({ name, values: got.getRows().map((r) => r[0]) }).toEqual({ name, values: expected.getRows().map((r) => r[0]) });
      const hist = await c.runAndReadAll(`SELECT count(*) FROM history.kinds WHERE "${name}" IS NOT DISTINCT FROM (SELECT "${name}" FROM kinds k WHERE k.id = history.kinds.id)`);
      expect(Number(hist.getRows()[0]![0])).toBe(rows.length);
    }
    expect(w.stats.stageMs.directAppends).toBe(0); // text kinds and refused values: through staging
    const nulls = await c.runAndReadAll(`SELECT ${CASES.map(([n]) => `"${n}" IS NULL`).join(' AND ')} FROM kinds WHERE id = 0`);
    expect(nulls.getRows()[0]![0]).toBe(true);
    expect(Number((await c.runAndReadAll('SELECT count(*) FROM kinds')).getRows()[0]![0])).toBe(rows.length);
  } finally {
    c.closeSync();
  }
});

test('fresh inserts appended straight to the mirror and history store what staging stores', async () => {
  const w = await warehouse();
  // Every value parses (no text kind, nothing refused): the direct path.
  const refused = /infinity|BC|NaN|^n$/;
  const cases = CASES.filter(([name]) => !refused.test(name)).map(([name, oid, mod, values]) => [name, oid, mod, values.filter((v) => !refused.test(v) && !(name.startsWith('n') && v.replace(/\D/g, '').length > 15))] as const);
  const columns: ColumnSchema[] = [
    { key: true, name: 'id', typeOid: 20, typeMod: -1 },
    ...cases.map(([name, typeOid, typeMod]) => ({ key: false, name, typeOid, typeMod })),
  ];
  const tables = new Map([['public.direct', { schema: 'public', table: 'direct', columns }]]);
  const rows = Array.from({ length: 2100 }, (_, r) => [String(r), ...cases.map(([, , , v]) => (r === 0 ? null : v[(r - 1) % v.length]!))]);
  const changes = rows.map((row, seq) => ({ op: 'I' as const, table: 'public.direct', row, lsn: 10n, seq, commitTimeUs: 1_795_474_996_123_456n }));
  await w.apply({ tables, changes, ackLsn: 11n });
  expect(w.stats.stageMs.directAppends).toBe(1);
  // The same rows through staging (an update forces the general path) must read back identically.
  await w.apply({ tables, changes: rows.map((row, seq) => ({ op: 'U' as const, table: 'public.direct', row, lsn: 20n, seq, commitTimeUs: 1n })), ackLsn: 21n });
  expect(w.stats.stageMs.directAppends).toBe(1);
  const c = await w.connect();
  try {
    const names = cases.map(([n]) => `CAST("${n}" AS VARCHAR)`).join(', ');
    const ins = await c.runAndReadAll(`SELECT id, ${names}, _op, _lsn, _seq, _commit_ts FROM history.direct WHERE _lsn = 10 ORDER BY id`);
    const upd = await c.runAndReadAll(`SELECT id, ${names} FROM history.direct WHERE _lsn = 20 ORDER BY id`);
    expect(ins.getRows().map((r) => r.slice(0, -4))).toEqual(upd.getRows());
    expect(ins.getRows()[5]!.slice(-4).map(String)).toEqual(['I', '10', '5', '2026-11-23 23:03:16.123456+00']);
    const cur = await c.runAndReadAll(`SELECT id, ${names} FROM direct ORDER BY id`);
    expect(cur.getRows()).toEqual(upd.getRows());
    // Text values (short ASCII inline, the rest one call each) land in their rows in every 2,048-row vector.
    const t = cases.find(([name]) => name === 't')![3];
    const texts = await c.runAndReadAll('SELECT t FROM history.direct WHERE _lsn = 10 ORDER BY id');
    expect(texts.getRows().map((r) => r[0])).toEqual(rows.map((_, r) => (r === 0 ? null : t[(r - 1) % t.length]!)));
    // Each value equals its SQL conversion.
    for (const [name, typeOid, typeMod, values] of cases) {
      const m = mapColumn({ key: false, name, typeOid, typeMod });
      const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
      const expected = await c.runAndReadAll(
        `SELECT CAST(${m.fromText('v')} AS VARCHAR) FROM (VALUES ${values.map((v, k) => `(${k}, ${lit(v)})`).join(', ')}) t(k, v) ORDER BY k`,
      );
      const got = await c.runAndReadAll(`SELECT CAST("${name}" AS VARCHAR) FROM history.direct WHERE _lsn = 10 AND id BETWEEN 1 AND ${values.length} ORDER BY id`);
      expect({ name, values: got.getRows().map((r) => r[0]) }).toEqual({ name, values: expected.getRows().map((r) => r[0]) });
    }
  } finally {
    c.closeSync();
  }
});

test('a key without a parser (uuid) and a key the parser refuses are converted by SQL where replaced keys need them', async () => {
  const w = await warehouse();
  const columns: ColumnSchema[] = [
    { key: true, name: 'u', typeOid: 2950, typeMod: -1 },
    { key: true, name: 'at', typeOid: 1184, typeMod: -1 },
    { key: false, name: 'v', typeOid: 23, typeMod: -1 },
  ];
  const tables = new Map([['public.k', { schema: 'public', table: 'k', columns }]]);
  const u = (n: number) => `00000000-0000-0000-0000-00000000000${n}`;
  const ch = (op: 'I' | 'U' | 'D', lsn: bigint, seq: number, row: (string | null)[]) => ({ op, table: 'public.k', row, lsn, seq, commitTimeUs: 1n });
  await w.apply({ tables, ackLsn: 11n, changes: [
    ch('I', 10n, 0, [u(1), '2026-01-01 00:00:00+00', '1']),
    ch('I', 10n, 1, [u(2), 'infinity', '2']),
    ch('I', 10n, 2, [u(3), '0001-01-01 00:00:00+00 BC', '3']),
  ] });
  await w.apply({ tables, ackLsn: 21n, changes: [
    ch('U', 20n, 0, [u(1), '2026-01-01 00:00:00+00', '10']),
    ch('U', 20n, 1, [u(2), 'infinity', '20']),
    ch('D', 20n, 2, [u(3), '0001-01-01 00:00:00+00 BC', null]),
  ] });
  const c = await w.connect();
  try {
    const r = await c.runAndReadAll('SELECT CAST(u AS VARCHAR), CAST("at" AS VARCHAR), v FROM k ORDER BY u');
    expect(r.getRows()).toEqual([[u(1), '2026-01-01 00:00:00+00', 10], [u(2), 'infinity', 20]]);
    expect(Number((await c.runAndReadAll('SELECT count(*) FROM history.k')).getRows()[0]![0])).toBe(6);
  } finally {
    c.closeSync();
  }
});
