import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { ColumnSchema } from '../change/index.ts';
import { mapColumn } from './pg-types.ts';

let conn: DuckDBConnection;
beforeAll(async () => {
  conn = await (await DuckDBInstance.create(':memory:')).connect();
  await conn.run("SET TimeZone = 'UTC'");
});
afterAll(() => conn.closeSync());

const col = (typeOid: number, typeMod = -1, userType?: string): ColumnSchema => ({ key: false, name: 'c', typeOid, typeMod, ...(userType ? { userType } : {}) });
const numericMod = (p: number, s: number) => ((p << 16) | s) + 4;

/** PostgreSQL text -> DuckDB (fromText) -> text (toText), and the value's DuckDB rendering. */
async function roundTrip(c: ColumnSchema, text: string | null): Promise<{ value: string | null; back: string | null }> {
  const m = mapColumn(c);
  const r = await conn.runAndReadAll(
    `SELECT CAST(v AS VARCHAR), ${m.toText('v')} FROM (SELECT ${m.fromText('$1::VARCHAR')} AS v)`,
    [text],
  );
  const [value, back] = r.getRows()[0] as [string | null, string | null];
  return { value, back };
}

describe('arrays are LISTs of their element type', () => {
  test('int[] keeps NULL elements; text[] unquotes and re-quotes exactly', async () => {
    expect(mapColumn(col(1007)).duckType).toBe('INTEGER[]');
    expect(await roundTrip(col(1007), '{1,NULL,-3}')).toEqual({ value: '[1, NULL, -3]', back: '{1,NULL,-3}' });
    const text = String.raw`{plain,"a,b","NULL",NULL,"x\"y","back\\slash","","{}","sp ace"}`;
    expect((await roundTrip(col(1009), text)).back).toBe(text);
    expect(await roundTrip(col(1009), '{}')).toEqual({ value: '[]', back: '{}' });
  });
  test('element types convert like columns: numeric(10,2)[], date[] with BC and infinity, bytea[], enum[]', async () => {
    expect((await roundTrip(col(1231, numericMod(10, 2)), '{1.50,NULL}')).value).toBe('[1.50, NULL]');
    expect((await roundTrip(col(1182), '{"0044-03-15 BC",infinity}')).back).toBe('{"0044-03-15 BC",infinity}');
    expect((await roundTrip(col(1001), String.raw`{"\\x01ff",NULL}`)).back).toBe(String.raw`{"\\x01ff",NULL}`);
    expect(mapColumn(col(99999, -1, 'enum[]')).duckType).toBe('VARCHAR[]');
  });
  test('multi-dimensional values are flattened in row-major order; explicit bounds are dropped', async () => {
    expect((await roundTrip(col(1007), '{{1,2},{3,NULL}}')).value).toBe('[1, 2, 3, NULL]');
    expect((await roundTrip(col(1007), '[0:1]={5,6}')).value).toBe('[5, 6]');
  });
  test('an array of a type without an exact mapping stays text (and warns)', () => {
    expect(mapColumn(col(1041)).duckType).toBe('VARCHAR'); // inet[]
    expect(mapColumn(col(1041)).fallback).toContain('oid 1041');
    expect(mapColumn(col(99999, -1, 'tsvector[]')).fallback).toContain('array');
  });
});

describe('scalars', () => {
  /** Whether the mapping calls the text unfit (stored NULL, kept aside). */
  const unfit = async (c: ColumnSchema, text: string): Promise<boolean> => {
    const m = mapColumn(c);
    if (!m.unfit) return false;
    return (await conn.runAndReadAll(`SELECT ${m.unfit('$1::VARCHAR')}`, [text])).getRows()[0]![0] as boolean;
  };
  test('numeric(p,s) is DECIMAL(p,s); unconstrained numeric is DECIMAL(38,18); a value that does not fit is NULL and called unfit, never rounded', async () => {
    expect(mapColumn(col(1700, numericMod(12, 3))).duckType).toBe('DECIMAL(12,3)');
    expect(mapColumn(col(1700)).duckType).toBe('DECIMAL(38,18)');
    expect((await roundTrip(col(1700), '-12345678901234567890.123456789012345678')).value).toBe('-12345678901234567890.123456789012345678');
    expect((await roundTrip(col(1700), '1.50000000000000000000000')).value).toBe('1.500000000000000000');
    for (const text of ['0.3333333333333333333333', '123456789012345678901', 'NaN', 'Infinity', '-Infinity']) {
      expect((await roundTrip(col(1700), text)).value).toBeNull();
      expect(await unfit(col(1700), text)).toBe(true);
    }
    expect(await unfit(col(1700), '1.50000000000000000000000')).toBe(false);
    for (const text of ['NaN', 'Infinity', '-Infinity']) {
      expect((await roundTrip(col(1700, numericMod(10, 2)), text)).value).toBeNull();
      expect(await unfit(col(1700, numericMod(10, 2)), text)).toBe(true);
    }
    expect((await roundTrip(col(1700, numericMod(10, 2)), '-12.50')).value).toBe('-12.50');
    expect(await unfit(col(1700, numericMod(10, 2)), '-12.50')).toBe(false);
    expect((await roundTrip(col(1231, numericMod(10, 2)), '{1.50,NaN,NULL}')).value).toBe('[1.50, NULL, NULL]');
    expect(await unfit(col(1231, numericMod(10, 2)), '{1.50,NaN,NULL}')).toBe(true);
    expect(await unfit(col(1231, numericMod(10, 2)), '{1.50,NULL}')).toBe(false);
    expect(mapColumn(col(1700, numericMod(50, 10))).fallback).toContain('DECIMAL(38)');
  });
  test('±infinity and BC dates and timestamps', async () => {
    expect(await roundTrip(col(1082), '0044-03-15 BC')).toEqual({ value: '0044-03-15 (BC)', back: '0044-03-15 BC' });
    expect((await roundTrip(col(1114), '0044-03-15 12:30:00.5 BC')).back).toBe('0044-03-15 12:30:00.5 BC');
    expect((await roundTrip(col(1184), '0001-01-01 00:00:00+00 BC')).back).toBe('0001-01-01 00:00:00+00 BC');
    expect((await roundTrip(col(1184), '-infinity')).back).toBe('-infinity');
    expect((await roundTrip(col(1082), 'infinity')).back).toBe('infinity');
  });
  test('interval (mixed signs) and timetz', async () => {
    expect((await roundTrip(col(1186), '-1 days +02:03:00')).value).toBe('-1 day 02:03:00');
    expect((await roundTrip(col(1186), '1 year 2 mons -3 days -04:05:06.789')).value).toBe('1 year 2 months -3 days -04:05:06.789');
    expect(mapColumn(col(1266)).duckType).toBe('TIMETZ');
    expect((await roundTrip(col(1266), '04:05:06.789+05:30')).value).toBe('04:05:06.789+05:30');
  });
  test('enums, composites and ranges are text without a warning; unknown types are text with one', () => {
    for (const u of ['enum', 'composite', 'range', 'multirange']) {
      expect(mapColumn(col(99999, -1, u)).duckType).toBe('VARCHAR');
      expect(mapColumn(col(99999, -1, u)).fallback).toBeUndefined();
    }
    expect(mapColumn(col(3904)).fallback).toBeUndefined(); // int4range
    expect(mapColumn(col(869)).fallback).toContain('oid 869'); // inet
  });
});
