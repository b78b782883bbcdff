import { describe, expect, test } from 'bun:test';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { firstRow, orderChange, ordersBatch, tieredOrders } from '../../test/support/tiering.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics/index.ts';
import { createTiering, type Tiering, type TieringOptions } from './index.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';

const temps = tempWarehouses();

const batch = ordersBatch;
const setup = (n = 730, extra: Partial<TieringOptions> = {}) => tieredOrders(temps, n, extra);
const one = firstRow;
const order = orderChange;

const TOTALS = 'SELECT count(*), sum(price), count(DISTINCT order_id) FROM orders';

describe('tiering', () => {
  test('one pass fills warm and cold, queries answer the same, history too', async () => {
    const { w, tiering, dir, opts } = await setup();
    const before = await one(w, TOTALS);
    const historyBefore = await one(w, 'SELECT count(*), sum(price) FROM history.orders');
    const report = await tiering.archive();
    expect(report.errors).toEqual([]);
    expect(report.moved.some((m) => m.to === 'warm' && m.from === 'hot')).toBe(true);
    expect(report.moved.some((m) => m.to === 'cold')).toBe(true);
    expect(await one(w, TOTALS)).toEqual(before);
    expect(await one(w, 'SELECT count(*), sum(price) FROM history.orders')).toEqual(historyBefore);
    // Hot keeps only the last 30 days; the views still see everything once.
    const hot = Number((await one(w, 'SELECT count(*) FROM _hot."public.orders"'))[0]);
    expect(hot).toBeGreaterThan(20);
    expect(hot).toBeLessThan(40);
    // Manifest statistics in the key's own order: the oldest month holds the highest order ids.
    const [minKey, maxKey] = await one(w, "SELECT min_key, max_key FROM _ducktail.tier_files WHERE kind = 'current' ORDER BY min_time LIMIT 1");
    expect(Number(minKey)).toBeLessThan(Number(maxKey));
    expect(Number(maxKey)).toBe(730);
    const tiers = await one(w, "SELECT count(*) FILTER (tier = 'warm'), count(*) FILTER (tier = 'cold') FROM _ducktail.tier_files WHERE retired_pass IS NULL");
    expect(Number(tiers[0])).toBeGreaterThan(0);
    expect(Number(tiers[1])).toBeGreaterThan(0);
    expect(readdirSync(join(dir, 'warm', 'current', 'public.orders')).every((m) => m.startsWith('month=') || m === '_manifest.json')).toBe(true);
    // The month folders whose files went cold are gone from the warm tier, not left empty.
    const warmMonths = readdirSync(join(dir, 'warm', 'current', 'public.orders')).filter((m) => m.startsWith('month='));
    expect(warmMonths.filter((m) => readdirSync(join(dir, 'warm', 'current', 'public.orders', m)).length === 0)).toEqual([]);
    expect(String(warmMonths.length)).toBe((await one(w, "SELECT count(DISTINCT month) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND tier = 'warm' AND kind = 'current'"))[0]!);
    // A second pass moves nothing more and changes no answer; /metrics has the tier sizes.
    const metrics = createMetrics();
    const again = await createTiering(opts, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error'), metrics }).archive();
    expect(again.moved).toEqual([]);
    expect(await one(w, TOTALS)).toEqual(before);
    const text = (await metrics.render()).text;
    expect(text).toContain('ducktail_tier_passes_total{result="done"} 1');
    expect(text).toContain('ducktail_tier_pass_duration_seconds_count 1');
    expect(text).toContain('ducktail_tier_cold_cache_bytes 0');
  }, 60_000);

  test('updates and deletes of archived rows show at once, replays change nothing', async () => {
    const { w, tiering } = await setup();
    await tiering.archive();
    // order 700 is ~700 days old (cold), 300 ~300 days (cold), 100 ~100 days (warm).
    const late = batch([
      order('U', 700, '1000.00', 700, 5000n, 0),
      order('D', 300, '0', 300, 5000n, 1),
      order('U', 100, '2000.00', 100, 5001n, 0),
    ]);
    const expected = await one(
      w,
      'SELECT count(*) - 1, sum(CASE order_id WHEN 700 THEN 1000 WHEN 100 THEN 2000 WHEN 300 THEN 0 ELSE price END), count(*) - 1 FROM orders',
    );
    await w.apply(late);
    expect(await one(w, TOTALS)).toEqual(expected);
    await w.apply(late); // replay: skipped by the stored position
    expect(await one(w, TOTALS)).toEqual(expected);
    expect(await one(w, 'SELECT price FROM orders WHERE order_id = 700')).toEqual(['1000.00']);
    expect(await one(w, 'SELECT count(*) FROM orders WHERE order_id = 300')).toEqual(['0']);
    // And after another pass (the updated rows are hot again, old positions stay deleted).
    await tiering.archive();
    expect(await one(w, TOTALS)).toEqual(expected);
  }, 30_000);

  test('a month with more than max_file_rows rows is split by key into several files', async () => {
    // Only the oldest ~3 months move (hot_days 640), ~30 orders a month.
    const { w, tiering } = await setup(730, { maxFileRows: 12, hotDays: 640, warmDays: 5000 });
    const before = await one(w, TOTALS);
    const report = await tiering.archive();
    expect(report.errors).toEqual([]);
    expect(await one(w, TOTALS)).toEqual(before);
    // Three files per full month and kind, none over the limit, key ranges disjoint, every archived row located once.
    const [files, months, biggest, rows] = await one(
      w,
      "SELECT count(*), count(DISTINCT month), max(row_count), sum(row_count) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND kind = 'current'",
    );
    expect(Number(months)).toBeGreaterThanOrEqual(2);
    expect(Number(files)).toBeGreaterThanOrEqual(3 * (Number(months) - 1));
    expect(Number(biggest)).toBeLessThanOrEqual(12);
    expect(await one(w, 'SELECT count(*), count(DISTINCT key) FROM _ducktail.tier_locator')).toEqual([rows!, rows!]);
    expect((await one(w, "SELECT count(*) FROM _ducktail.tier_files WHERE kind = 'history' AND row_count > 12"))[0]).toBe('0');
  }, 60_000);

  test('time travel and change feed across tiers', async () => {
    const { w, tiering } = await setup();
    await tiering.archive();
    const before = await one(w, TOTALS);
    const t1 = new Date().toISOString();
    await Bun.sleep(5);
    const now = BigInt(Date.now()) * 1000n;
    const late = [order('U', 700, '1000.00', 700, 5000n, 0), order('D', 300, '0', 300, 5000n, 1)].map((c) => ({ ...c, commitTimeUs: now }));
    await w.apply(batch(late));
    const at = `SELECT count(*), sum(price), count(DISTINCT order_id) FROM history.orders_at('${t1}')`;
    expect(await one(w, at)).toEqual(before);
    expect(await one(w, 'SELECT count(*) FROM history.orders_at_lsn(4999)')).toEqual([before[0]!]);
    expect(await one(w, `SELECT count(*), sum(price) FROM history.orders_at(now())`)).toEqual((await one(w, TOTALS)).slice(0, 2));
    expect(await one(w, `SELECT string_agg(_op || order_id, ',') FROM history.orders_changes('${t1}', now())`)).toEqual(['U700,D300']);
    // Before the first change the table did not exist yet.
    expect(await one(w, "SELECT count(*) FROM history.orders_at('2000-01-01')")).toEqual(['0']);
  }, 30_000);

  test('compaction merges the files of a month and rewrites files with many superseded rows', async () => {
    const { w, tiering, opts } = await setup(730, { warmDays: 5000, compactMinFiles: 2 });
    const first = await tiering.archive();
    expect(first.compacted.from).toBe(0);
    const before = await one(w, TOTALS);
    // A later pass with a shorter hot window adds a second file to the boundary month: merged.
    const later = createTiering({ ...opts, hotDays: 10 }, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
    const second = await later.archive();
    expect(second.compacted.from).toBeGreaterThanOrEqual(2);
    expect(await one(w, TOTALS)).toEqual(before);
    expect(await one(w, "SELECT max(n) FROM (SELECT count(*) n FROM _ducktail.tier_files WHERE retired_pass IS NULL GROUP BY kind, month)")).toEqual(['1']);
    // Update most orders of one archived month (ids 300..329, ~300 days old): that file is rewritten.
    const late = Array.from({ length: 30 }, (_, i) => order('U', 300 + i, '5.00', 300 + i, 9000n, i));
    await w.apply(batch(late));
    const expected = await one(w, TOTALS);
    const third = await later.archive();
    expect(third.compacted.from).toBeGreaterThanOrEqual(1);
    expect(await one(w, TOTALS)).toEqual(expected);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_deletes')).toEqual(['0']);
    expect(await one(w, "SELECT count(*) = count(DISTINCT key) FROM _ducktail.tier_locator")).toEqual(['true']);
  }, 60_000);

  test('retention_days deletes archived files older than the retention through the manifest', async () => {
    const { w, tiering, opts } = await setup();
    await tiering.archive();
    const before = Number((await one(w, 'SELECT count(*) FROM orders'))[0]);
    const keep = createTiering(
      { ...opts, tables: { 'public.orders': { timeColumn: 'order_date', retentionDays: 400 } } },
      { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') },
    );
    const r = await keep.archive();
    expect(r.expired).toBeGreaterThan(0);
    const [count, oldest] = await one(w, "SELECT count(*), min(order_date) > now() - INTERVAL 430 DAY FROM orders");
    // Whole files go: rows of the newest expired month are gone, rows of months younger than 400 days stay.
    expect(Number(count)).toBeLessThan(before);
    expect(Number(count)).toBeGreaterThan(390);
    expect(oldest).toBe('true');
    expect(await one(w, "SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND max_time < now() - INTERVAL 400 DAY")).toEqual(['0']);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_locator l JOIN _ducktail.tier_files f ON f.id = l.file_id WHERE f.retired_pass IS NOT NULL')).toEqual(['0']);
  }, 30_000);

  test('the cron schedule runs passes until its signal aborts', async () => {
    const { w, opts } = await setup(60);
    const tiering = createTiering({ ...opts, schedule: '* * * * * *' }, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
    const stop = new AbortController();
    tiering.schedule(stop.signal);
    // The first pass moves ~46 months one at a time: allow for a loaded machine.
    const until = Date.now() + 30_000;
    while (tiering.status.passes < 1 && Date.now() < until) await Bun.sleep(50);
    stop.abort();
    await tiering.idle();
    expect(tiering.status.passes).toBeGreaterThanOrEqual(1);
    expect(Number((await one(w, 'SELECT count(*) FROM _ducktail.tier_files'))[0])).toBeGreaterThan(0);
    const after = tiering.status.passes;
    await Bun.sleep(1500);
    expect(tiering.status.passes).toBe(after);
  }, 45_000);

  test('DuckDB alone reads every archived row from the two folders', async () => {
    const { w, tiering, dir } = await setup();
    await tiering.archive();
    const archived = await one(w, "SELECT sum(row_count) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND kind = 'current'");
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const glob = `['${dir}/warm/current/public.orders/*/*.parquet', '${dir}/cold/current/public.orders/*/*.parquet']`;
    const r = await c.runAndReadAll(`SELECT count(*), count(DISTINCT month) FROM read_parquet(${glob}, hive_partitioning = true)`);
    expect(String(r.getRows()[0]![0])).toBe(archived[0]!);
    expect(Number(r.getRows()[0]![1])).toBeGreaterThan(20);
    // The _manifest.json files list the same rows, per tier.
    const rowsIn = async (p: string) => ((await Bun.file(p).json()) as { files: { row_count: number; tier: string }[] }).files;
    const warmManifest = await rowsIn(`${dir}/warm/current/public.orders/_manifest.json`);
    expect(warmManifest.reduce((a, f) => a + f.row_count, 0)).toBe(Number(archived[0]));
    expect(new Set(warmManifest.map((f) => f.tier))).toEqual(new Set(['warm', 'cold']));
    expect(await rowsIn(`${dir}/cold/current/public.orders/_manifest.json`)).toEqual(warmManifest.map((f) => expect.objectContaining(f)));
    c.closeSync();
    db.closeSync();
  }, 30_000);

  test('retired warm files are deleted after the grace period, orphans swept', async () => {
    const { w, tiering, dir } = await setup();
    await tiering.archive();
    const retired = await one(w, 'SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NOT NULL');
    expect(Number(retired[0])).toBeGreaterThan(0);
    const orphan = join(dir, 'warm', 'current', 'public.orders', 'month=2000-01', 'part-leftover.parquet');
    await Bun.write(orphan, 'not parquet');
    const r = await tiering.archive();
    expect(r.sweep.trashDeleted).toBe(Number(retired[0]));
    expect(r.sweep.orphansDeleted).toBe(1);
    expect(existsSync(orphan)).toBe(false);
    expect(await one(w, 'SELECT count(*) FROM orders')).toEqual(['730']);
  }, 30_000);
  test('every pass is logged, and a table the config names but the warehouse lacks is warned about', async () => {
    const { w, opts } = await setup();
    const lines: string[] = [];
    const log = createLogger('info', 'tiering', (l) => lines.push(l));
    const misspelt = { ...opts, tables: { ...opts.tables, 'public.order': { timeColumn: 'order_date' } } };
    const report = await createTiering(misspelt, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log }).archive();
    expect(report.errors).toEqual([]);
    expect(lines.join('')).toContain(`archive pass ${report.pass} done in`);
    expect(lines.join('')).toContain(`${report.rowsToWarm} rows hot -> warm, ${report.rowsToCold} rows warm -> cold`);
    expect(lines.join('')).toContain('tiering.tables.\"public.order\": no such table in the warehouse (mirrored: public.orders)');
  }, 30_000);
});

export type { Tiering };
