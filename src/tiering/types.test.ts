import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, TableSchema } from '../change/index.ts';
import { createLogger } from '../log.ts';
import { createWarehouse, type Warehouse } from '../warehouse/index.ts';
import { tieringOptionsIn } from '../../test/support/tiering.ts';
import { createTiering } from './index.ts';

// Every column type the warehouse maps survives archiving: the same values and the same result
// types through the view, before and after the rows move to Parquet (warm and cold).
const COLS: [string, number, number, string | null][] = [
  ['id', 20, -1, null],
  ['b', 16, -1, 't'],
  ['i2', 21, -1, '-32768'],
  ['i4', 23, -1, '2147483647'],
  ['f4', 700, -1, '1.5'],
  ['f8', 701, -1, '-0.000123'],
  ['n', 1700, ((38 << 16) | 10) + 4, '1234567890123456789012345678.0123456789'],
  ['nu', 1700, -1, '3.141592653589793238'],
  ['t', 25, -1, 'text, "quoted"'],
  ['d', 1082, -1, '2024-02-29'],
  ['ts', 1114, -1, '2024-02-29 12:34:56.123456'],
  ['tm', 1083, -1, '23:59:59.999999'],
  ['ttz', 1266, -1, '12:00:00+05:30'],
  ['iv', 1186, -1, '1 year 2 mons -3 days +04:05:06.000007'],
  ['u', 2950, -1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['j', 114, -1, '{"a": [1, 2]}'],
  ['jb', 3802, -1, '{"a": [1, 2]}'],
  ['by', 17, -1, '\\x00ff10'],
  ['ai', 1007, -1, '{1,NULL,3}'],
  ['at', 1009, -1, '{"a b",c}'],
  ['at2', 1185, -1, '{"2024-01-01 00:00:00+00"}'],
  ['od', 1184, -1, null],
];
const SCHEMA: TableSchema = {
  schema: 'public',
  table: 'wide',
  columns: COLS.map(([name, typeOid, typeMod]) => ({ key: name === 'id', name, typeOid, typeMod })),
};

let dir = '';
let w: Warehouse | null = null;
afterEach(async () => {
  await w?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('every mapped type reads the same through the view after archiving', async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-tier-types-'));
  w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  const now = Date.now();
  const changes: Change[] = [400, 100, 5].map((age, i) => ({
    op: 'I',
    table: 'public.wide',
    row: COLS.map(([name, , , v]) => (name === 'id' ? String(i + 1) : name === 'od' ? new Date(now - age * 86_400_000).toISOString() : v)),
    lsn: 10n + BigInt(i),
    seq: 0,
    commitTimeUs: BigInt(now) * 1000n,
  }));
  await w.apply({ tables: new Map([['public.wide', SCHEMA]]), changes });
  const read = async () => {
    const c = await w!.connect();
    try {
      const r = await c.runAndReadAll('SELECT * FROM wide ORDER BY id');
      const types = Array.from({ length: r.columnCount }, (_, i) => r.columnType(i).toString());
      return { types, rows: JSON.stringify(r.getRowsJson()) };
    } finally {
      c.closeSync();
    }
  };
  const before = await read();
  const tiering = createTiering(
    tieringOptionsIn(dir, { tables: { 'public.wide': { timeColumn: 'od' } } }),
    { exclusive: (fn) => w!.exclusive(fn), connect: () => w!.connect(), log: createLogger('error') },
  );
  const report = await tiering.archive();
  expect(report.errors).toEqual([]);
  expect(report.moved.map((m) => `${m.from}->${m.to}`).sort()).toEqual(['hot->warm', 'hot->warm', 'warm->cold']);
  expect(await read()).toEqual(before);
}, 30_000);
