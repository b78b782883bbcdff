import { describe, expect, test } from 'bun:test';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { firstRow as one, orderChange as order, ordersBatch as batch, tieredOrders } from '../../test/support/tiering.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { createLogger } from '../log.ts';
import { createTiering } from './index.ts';

const temps = tempWarehouses();
const TOTALS = 'SELECT count(*), sum(price), count(DISTINCT order_id) FROM orders';
/** Offsets on a batch make the applier skip its stored-position filter (as Kafka batches do): a true replay. */
const replay = (changes: Parameters<typeof batch>[0]) => ({ ...batch(changes), offsets: [] });
/** The first twelve order ids (ascending) of the archived file holding order `id`. */
const fileMates = async (w: Awaited<ReturnType<typeof tieredOrders>>['w'], id: number) => {
  const c = await w.connect();
  try {
    const r = await c.runAndReadAll(
      `SELECT key::BIGINT FROM _ducktail.tier_locator WHERE file_id = (SELECT file_id FROM _ducktail.tier_locator WHERE key = '${id}') ORDER BY 1 LIMIT 12`,
    );
    const ids = r.getRows().map((x) => Number(x[0]));
    expect(ids).toHaveLength(12);
    return ids;
  } finally {
    c.closeSync();
  }
};

describe('archived rows: version LSNs and deletion vectors', () => {
  test('a replayed older change leaves a newer archived version alone; a newer change supersedes it', async () => {
    const { w, tiering } = await tieredOrders(temps);
    await tiering.archive();
    // Order 100 (~100 days old, warm) is updated at LSN 5001, and the next pass archives that version.
    await w.apply(batch([order('U', 100, '2000.00', 100, 5001n, 0)]));
    await tiering.archive();
    expect(await one(w, `SELECT lsn FROM _ducktail.tier_locator WHERE key = '100'`)).toEqual(['5001']);
    // Rows of the initial inserts carry their insert's LSN (100 + i).
    expect(await one(w, `SELECT lsn FROM _ducktail.tier_locator WHERE key = '700'`)).toEqual(['799']);
    const expected = await one(w, TOTALS);
    const history = await one(w, 'SELECT count(*) FROM history.orders');
    // Replays of the update itself and of an older change, past the applier's position filter.
    await w.apply(replay([order('U', 100, '2000.00', 100, 5001n, 0)]));
    await w.apply(replay([order('U', 100, '1.00', 100, 4000n, 0), order('D', 700, '0', 700, 700n, 0)]));
    expect(await one(w, TOTALS)).toEqual(expected);
    expect(await one(w, 'SELECT price FROM orders WHERE order_id = 100')).toEqual(['2000.00']);
    expect(await one(w, 'SELECT count(*) FROM history.orders')).toEqual(history);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_deletes WHERE lsn <= 5001 AND lsn > 5000')).toEqual(['1']);
    // A newer change supersedes the archived version.
    await w.apply(replay([order('U', 100, '3000.00', 100, 6000n, 0)]));
    expect(await one(w, 'SELECT price, count(*) OVER () FROM orders WHERE order_id = 100')).toEqual(['3000.00', '1']);
    expect(await one(w, 'SELECT count(*) FROM orders')).toEqual([expected[0]!]);
    // A copy's reset (TRUNCATE at LSN 0) supersedes every archived row, whatever its version; copied rows (LSN 0) apply.
    await w.apply(batch([{ ...order('T', 0, '0', 0, 0n, 0), row: [] }, ...[1, 2, 3].map((id) => order('I', id, '1.00', 400, 0n, id))]));
    expect(await one(w, TOTALS)).toEqual(['3', '3.00', '3']);
  }, 60_000);

  test('many deletes of a file go to its deletion vector, which moves to cold and is compacted away', async () => {
    // Everything warm first (warm_days out of reach); vectors from 5 deletes on; no compaction yet.
    const { w, tiering, dir, opts } = await tieredOrders(temps, 730, { warmDays: 5000, vectorMinRows: 5, compactDeletedRatio: 0.9 });
    await tiering.archive();
    const update = (ids: number[], lsn: bigint) => w.apply(batch(ids.map((id, i) => order('U', id, '7.00', id, lsn, i))));
    // Twelve orders of the file holding order 300 (orders are a day apart: which ones share its month depends on today).
    const ids = await fileMates(w, 300);
    await update([...ids.slice(0, 6), 400, 401, 402], 9000n);
    const expected = await one(w, TOTALS);
    const first = await tiering.archive();
    // The month of order 300 got a vector; 400-402 (3 rows) stay inline.
    expect(first.vectors).toBe(1);
    expect(await one(w, TOTALS)).toEqual(expected);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_deletes')).toEqual(['3']);
    const [dv, dvRows] = await one(w, 'SELECT deletion_vector, dv_rows FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL');
    expect(dvRows).toBe('6');
    expect(dv!.startsWith(join(dir, 'warm', '_deletes'))).toBe(true);
    // More deletes of the same file: a new vector with all of them, the old one queued for deletion.
    await update(ids.slice(6, 11), 9100n);
    const more = await one(w, TOTALS);
    await tiering.archive();
    expect(await one(w, TOTALS)).toEqual(more);
    const [dv2, rows2] = await one(w, 'SELECT deletion_vector, dv_rows FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL');
    expect([dv2 === dv, rows2]).toEqual([false, '11']);
    expect(existsSync(dv!)).toBe(true); // queued: deleted by the next pass's sweep (grace 0)
    // The lake's manifest lists the vector's positions too.
    const manifest = (await Bun.file(join(dir, 'warm', 'current', 'public.orders', '_manifest.json')).json()) as { files: { deleted_rows: number[]; deletion_vector: string | null }[] };
    expect(manifest.files.filter((f) => f.deletion_vector).map((f) => f.deleted_rows.length)).toEqual([11]);
    // To cold (warm_days 180): the vector goes with the file.
    const cold = createTiering({ ...opts, warmDays: 180 }, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
    await cold.archive();
    expect([existsSync(dv!), existsSync(dv2!)]).toEqual([false, true]);
    expect(await one(w, "SELECT tier FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL")).toEqual(['cold']);
    expect(await one(w, TOTALS)).toEqual(more);
    // ... and a copy of the vector goes to the cold store beside the data, named by the cold manifest.
    const [coldVector] = await one(w, 'SELECT cold_vector FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL');
    expect(coldVector).toBe(`file://${join(dir, 'cold', '_deletes', 'current', 'public.orders', basename(dv2!))}`);
    expect(existsSync(coldVector!.slice('file://'.length))).toBe(true);
    // Compaction at 30% superseded rewrites that cold file (through a warm file moved back to cold) without its rows.
    const compacting = createTiering({ ...opts, warmDays: 180, compactDeletedRatio: 0.3 }, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
    const r = await compacting.archive();
    expect(r.errors).toEqual([]);
    expect(r.compacted.from).toBeGreaterThanOrEqual(1);
    expect(await one(w, TOTALS)).toEqual(more);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL')).toEqual(['0']);
    // The retired file's vector copy in the cold store is queued with it: gone after the next sweep (grace 0).
    expect(await one(w, `SELECT count(*) FROM _ducktail.tier_trash WHERE location = '${coldVector}'`)).toEqual(['1']);
    await compacting.archive();
    expect(existsSync(coldVector!.slice('file://'.length))).toBe(false);
    expect(await one(w, "SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND tier = 'warm' AND max_time < now() - INTERVAL 180 DAY")).toEqual(['0']);
    // Every archived row located once; the rewritten file's rows keep their version LSNs (order 300's
    // update was archived again by a later pass; the twelfth order was never updated: its insert's, 100 + id - 1).
    expect(await one(w, `SELECT count(*) = count(DISTINCT key), min(lsn) FILTER (key = '${ids[0]}') FROM _ducktail.tier_locator`)).toEqual(['true', '9000']);
    expect(await one(w, `SELECT lsn FROM _ducktail.tier_locator WHERE key = '${ids[11]}'`)).toEqual([String(99 + ids[11]!)]);
  }, 90_000);
  test('the cold store alone is complete: data, _manifest.json and the deletion vectors of its files', async () => {
    const { w, tiering, dir } = await tieredOrders(temps, 730, { vectorMinRows: 5, compactDeletedRatio: 0.9 });
    await tiering.archive();
    // Six orders of the cold file holding order 600 (~600 days old) updated: it gets a deletion vector.
    const update = (ids: number[], lsn: bigint) => w.apply(batch(ids.map((id, i) => order('U', id, '7.00', 20, lsn, i))));
    const ids = await fileMates(w, 600);
    await update(ids.slice(0, 6), 9000n);
    const first = await tiering.archive();
    expect([first.errors, first.vectors, first.vectorsToCold]).toEqual([[], 1, 1]);
    const coldRoot = join(dir, 'cold');
    const vectorsInCold = () => readdirSync(join(coldRoot, '_deletes', 'current', 'public.orders'));
    expect(vectorsInCold()).toHaveLength(1);
    // An outside engine reading only the cold folder: its files minus the vectors its manifest names
    // give exactly the cold rows ducktail still serves from them.
    type Lake = { files: { path: string; tier: string; deleted_rows: number[]; deletion_vector: string | null }[] };
    const alone = async () => {
      const manifest = (await Bun.file(join(coldRoot, 'current', 'public.orders', '_manifest.json')).json()) as Lake;
      const cold = manifest.files.filter((f) => f.tier === 'cold');
      const withVector = cold.filter((f) => f.deletion_vector);
      expect(withVector.every((f) => f.deletion_vector!.startsWith(`file://${coldRoot}/_deletes/`))).toBe(true);
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const db = await DuckDBInstance.create(':memory:');
      const c = await db.connect();
      const local = (p: string) => `'${p.slice('file://'.length)}'`;
      // Each vector is (row, lsn); the data files are joined to their vector by the manifest's file path.
      const dvs = withVector.map((f) => `SELECT ${local(f.path)} AS path, row FROM read_parquet(${local(f.deletion_vector!)})`).join(' UNION ALL ') || 'SELECT NULL AS path, NULL AS row';
      const r = await c.runAndReadAll(
        `SELECT count(*) FROM read_parquet('${coldRoot}/current/public.orders/*/*.parquet', hive_partitioning = true, filename = true, file_row_number = true) p ` +
          `WHERE NOT EXISTS (SELECT 1 FROM (${dvs}) d WHERE d.path = p.filename AND d.row = p.file_row_number)`,
      );
      c.closeSync();
      db.closeSync();
      return Number(r.getRows()[0]![0]);
    };
    const served = async () =>
      // The archived rows still current (located) in live cold files.
      Number((await one(w, "SELECT count(*) FROM _ducktail.tier_locator l JOIN _ducktail.tier_files f ON f.id = l.file_id WHERE f.tier = 'cold' AND f.retired_pass IS NULL"))[0]);
    expect(await alone()).toBe(await served());
    // More deletes of that file: a new vector, copied again; the previous copy is deleted after the grace.
    await update(ids.slice(6, 11), 9100n);
    const second = await tiering.archive();
    expect([second.errors, second.vectorsToCold]).toEqual([[], 1]);
    expect(await alone()).toBe(await served());
    await tiering.archive();
    expect(vectorsInCold()).toEqual([basename((await one(w, 'SELECT cold_vector FROM _ducktail.tier_files WHERE cold_vector IS NOT NULL AND retired_pass IS NULL'))[0]!)]);
  }, 90_000);
});
