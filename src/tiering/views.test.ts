import { describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Change, type ChangeBatch, type TableSchema, UNCHANGED } from '../change/index.ts';
import { DAY_MS, tieringOptionsIn } from '../../test/support/tiering.ts';
import { createLogger } from '../log.ts';
import { lockDownInstance } from '../warehouse/query.ts';
import { createWarehouse, type Warehouse } from '../warehouse/index.ts';
import { createTiering } from './index.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';

/** orders(order_id bigint key, price numeric, order_date timestamptz, status text), with attnums as pgoutput's catalog gives them. */
const V1: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { key: true, name: 'order_id', typeOid: 20, typeMod: -1, attnum: 1 },
    { key: false, name: 'price', typeOid: 1700, typeMod: ((10 << 16) | 2) + 4, attnum: 2 },
    { key: false, name: 'order_date', typeOid: 1184, typeMod: -1, attnum: 3 },
    { key: false, name: 'status', typeOid: 25, typeMod: -1, attnum: 4 },
  ],
};
/** After `ALTER TABLE orders RENAME price TO amount; ALTER TABLE orders DROP status`. */
const V2: TableSchema = { ...V1, columns: [V1.columns[0]!, { ...V1.columns[1]!, name: 'amount' }, V1.columns[2]!] };

const { dirs, open } = tempWarehouses();

function change(schema: TableSchema, op: Change['op'], id: number, ageDays: number, lsn: bigint): Change {
  const at = Date.now() - ageDays * DAY_MS;
  const row = [String(id), `${(id % 97) + 1}.25`, new Date(at).toISOString(), `s${id % 3}`].slice(0, schema.columns.length);
  return { op, table: 'public.orders', row, lsn, seq: 0, commitTimeUs: BigInt(at) * 1000n };
}
const batch = (schema: TableSchema, changes: Change[]): ChangeBatch => ({ tables: new Map([['public.orders', schema]]), changes });

/** 730 orders over two years, one pass: cold, warm and hot. */
async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-views-'));
  dirs.push(dir);
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  open.push(w);
  await w.apply(batch(V1, Array.from({ length: 730 }, (_, i) => change(V1, 'I', i + 1, i, 100n + BigInt(i)))));
  const opts = tieringOptionsIn(dir);
  const tiering = createTiering(opts, {
    exclusive: (fn) => w.exclusive(fn),
    connect: () => w.connect(),
    onLayoutChange: (fn) => w.onLayoutChange(fn),
    log: createLogger('error'),
  });
  await lockDownInstance(w.instance, { allowedDirectories: [...tiering.readDirs, dir] });
  await tiering.init();
  return { w, tiering };
}

async function rows(w: Warehouse, sql: string): Promise<string[][]> {
  const c = await w.connect();
  try {
    const r = await c.runAndReadAll(sql);
    return r.getRows().map((x) => x.map((v) => String(v)));
  } finally {
    c.closeSync();
  }
}
const one = async (w: Warehouse, sql: string) => (await rows(w, sql))[0]!;

/** Parquet files a query opens (EXPLAIN ANALYZE's "Total Files Read" of every scan). */
async function filesRead(w: Warehouse, sql: string): Promise<number> {
  const plan = (await rows(w, `EXPLAIN ANALYZE ${sql}`)).map((r) => r[1]).join('\n');
  return [...plan.matchAll(/Total Files Read: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('tiering views', () => {
  test('predicates on the time column and the key skip archived files by the manifest min/max', async () => {
    const { w, tiering } = await setup();
    // Orders of the 10th to 19th of the month ~700 days ago (ids grow with age): one month, so one
    // year's group whatever today's date (orders 700..710 straddled New Year on 2026-12-06).
    const [lo, hi] = await one(
      w,
      "SELECT min(order_id), max(order_id) FROM orders WHERE order_date >= date_trunc('month', now() - INTERVAL 700 DAY) + INTERVAL 9 DAY " +
        "AND order_date < date_trunc('month', now() - INTERVAL 700 DAY) + INTERVAL 19 DAY",
    );
    const queries = [
      "SELECT count(*), sum(price) FROM orders WHERE order_date >= now() - INTERVAL 60 DAY",
      `SELECT count(*), sum(price) FROM orders WHERE order_id BETWEEN ${lo} AND ${hi}`,
      "SELECT count(*) FROM history.orders WHERE _commit_ts >= now() - INTERVAL 60 DAY",
    ];
    const before = await Promise.all(queries.map((q) => one(w, q)));
    const report = await tiering.archive();
    expect(report.errors).toEqual([]);
    const [current, history] = (await rows(w, "SELECT count(*) FILTER (kind = 'current'), count(*) FILTER (kind = 'history') FROM _ducktail.tier_files WHERE retired_pass IS NULL"))[0]!.map(Number) as [number, number];
    expect(current).toBeGreaterThan(12);
    // Every file is read by a query without predicates; the answers do not change with skipping.
    expect(await filesRead(w, 'SELECT count(*) FROM orders')).toBe(current);
    for (const [i, q] of queries.entries()) expect(await one(w, q)).toEqual(before[i]!);
    // The last 60 days: only the warm files of this year are opened (not the cold ones, not last year's).
    const recent = await filesRead(w, queries[0]!);
    expect(recent).toBeLessThan(current / 2);
    // Orders of one month ~2 years ago: only the files of their group (tier and year: 1 to 12 files, by today's date).
    const [group] = await one(
      w,
      "SELECT count(*) FROM _ducktail.tier_files f, (SELECT tier, left(month, 4) AS y FROM _ducktail.tier_files WHERE id = " +
        `(SELECT file_id FROM _ducktail.tier_locator WHERE key = '${lo}')) g WHERE f.retired_pass IS NULL AND f.kind = 'current' AND f.tier = g.tier AND left(f.month, 4) = g.y`,
    );
    expect(await filesRead(w, queries[1]!)).toBe(Number(group));
    expect(Number(group)).toBeLessThan(current);
    expect(await filesRead(w, queries[2]!)).toBeLessThan(history / 2);
  }, 60_000);

  test('a text key skips archived files by the manifest min/max too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ducktail-views-'));
    dirs.push(dir);
    const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
    open.push(w);
    const codes: TableSchema = {
      schema: 'public',
      table: 'codes',
      columns: [
        { key: true, name: 'code', typeOid: 25, typeMod: -1, attnum: 1 },
        { key: false, name: 'price', typeOid: 1700, typeMod: ((10 << 16) | 2) + 4, attnum: 2 },
        { key: false, name: 'order_date', typeOid: 1184, typeMod: -1, attnum: 3 },
      ],
    };
    // Codes K00001..K00730 a day apart (older = larger), as order numbers are.
    const rows = Array.from({ length: 730 }, (_, i): Change => {
      const at = Date.now() - i * DAY_MS;
      return { op: 'I', table: 'public.codes', row: [`K${String(i + 1).padStart(5, '0')}`, `${(i % 97) + 1}.25`, new Date(at).toISOString()], lsn: 100n + BigInt(i), seq: 0, commitTimeUs: BigInt(at) * 1000n };
    });
    await w.apply({ tables: new Map([['public.codes', codes]]), changes: rows });
    const tiering = createTiering(tieringOptionsIn(dir, { tables: { 'public.codes': { timeColumn: 'order_date' } } }), {
      exclusive: (fn) => w.exclusive(fn),
      connect: () => w.connect(),
      log: createLogger('error'),
    });
    await lockDownInstance(w.instance, { allowedDirectories: [...tiering.readDirs, dir] });
    await tiering.init();
    // Codes of the 10th to 19th of the month ~700 days ago: one month, so one tier-and-year group.
    const [lo, hi] = await one(
      w,
      "SELECT min(code), max(code) FROM codes WHERE order_date >= date_trunc('month', now() - INTERVAL 700 DAY) + INTERVAL 9 DAY " +
        "AND order_date < date_trunc('month', now() - INTERVAL 700 DAY) + INTERVAL 19 DAY",
    );
    const query = `SELECT count(*), sum(price) FROM codes WHERE code BETWEEN '${lo}' AND '${hi}'`;
    const before = await one(w, query);
    expect((await tiering.archive()).errors).toEqual([]);
    expect(await one(w, query)).toEqual(before);
    expect(await one(w, 'SELECT count(*), count(DISTINCT code) FROM codes')).toEqual(['730', '730']);
    const [current] = await one(w, "SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND kind = 'current'");
    const [group] = await one(
      w,
      "SELECT count(*) FROM _ducktail.tier_files f, (SELECT tier, left(month, 4) AS y FROM _ducktail.tier_files WHERE id = " +
        `(SELECT file_id FROM _ducktail.tier_locator WHERE key = '${lo}')) g WHERE f.retired_pass IS NULL AND f.kind = 'current' AND f.tier = g.tier AND left(f.month, 4) = g.y`,
    );
    expect(Number(group)).toBeLessThan(Number(current));
    expect(await filesRead(w, query)).toBe(Number(group));
    expect(await filesRead(w, 'SELECT count(*) FROM codes')).toBe(Number(current));
  }, 60_000);

  test('an update of an archived row with unchanged TOAST values takes them from the archived row', async () => {
    const { w, tiering } = await setup();
    const before = await one(w, 'SELECT order_date, status FROM orders WHERE order_id = 300');
    await tiering.archive();
    expect(await one(w, 'SELECT count(*) FROM _hot."public.orders" WHERE order_id = 300')).toEqual(['0']);
    await w.apply(batch(V1, [{ ...change(V1, 'U', 300, 299, 5000n), row: ['300', '9.99', UNCHANGED, UNCHANGED] }]));
    expect(await one(w, 'SELECT price, order_date, status FROM orders WHERE order_id = 300')).toEqual(['9.99', ...before]);
    expect(await one(w, 'SELECT count(*) FROM orders WHERE order_id = 300')).toEqual(['1']);
  }, 60_000);

  test('RENAME and DROP COLUMN after archiving: the views map archived files to the new layout', async () => {
    const { w, tiering } = await setup();
    const before = await one(w, 'SELECT count(*), sum(price) FROM orders');
    const statusBefore = await one(w, "SELECT count(*) FROM history.orders WHERE status = 's1'");
    await tiering.archive();
    // The schema change arrives with a new order (pgoutput sends the new Relation before it).
    await w.apply(batch(V2, [change(V2, 'I', 1000, 1, 5000n)]));
    const cols = (await rows(w, "SELECT column_name FROM (DESCRIBE orders)")).map((r) => r[0]);
    expect(cols).toEqual(['order_id', 'amount', 'order_date']);
    const after = await one(w, 'SELECT count(*), sum(amount) FROM orders');
    expect(after).toEqual([String(Number(before[0]) + 1), (Number(before[1]) + (1000 % 97) + 1.25).toFixed(2)]);
    expect(await one(w, 'SELECT count(*) FROM orders WHERE amount IS NULL')).toEqual(['0']);
    // The history keeps the dropped column's archived values under status__dropped, as the hot history does.
    expect(await one(w, "SELECT count(*) FROM history.orders WHERE status__dropped = 's1'")).toEqual(statusBefore);
    expect(await one(w, 'SELECT count(*) FROM history.orders WHERE amount IS NULL')).toEqual(['0']);
    // Updating an archived row under the new layout, another pass (files of both layouts), compaction of mixed layouts.
    await w.apply(batch(V2, [{ ...change(V2, 'U', 300, 299, 5001n), row: ['300', '7.00', new Date(Date.now() - 299 * DAY_MS).toISOString()] }]));
    await w.apply(batch(V2, Array.from({ length: 20 }, (_, i) => change(V2, 'I', 2000 + i, 100, 6000n + BigInt(i)))));
    const expected = await one(w, 'SELECT count(*), sum(amount), count(DISTINCT order_id) FROM orders');
    const pass2 = await tiering.archive();
    expect(pass2.errors).toEqual([]);
    expect(pass2.rowsToWarm).toBeGreaterThan(20);
    expect(await one(w, 'SELECT count(*), sum(amount), count(DISTINCT order_id) FROM orders')).toEqual(expected);
    expect(await one(w, 'SELECT amount FROM orders WHERE order_id = 300')).toEqual(['7.00']);
  }, 60_000);
});
