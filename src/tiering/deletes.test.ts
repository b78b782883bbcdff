import { describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { firstRow as one, orderChange as order, ordersBatch as batch, tieredOrders } from '../../test/support/tiering.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { createLogger } from '../log.ts';
import { createTiering } from './index.ts';

const temps = tempWarehouses();
const TOTALS = 'SELECT count(*), sum(price), count(DISTINCT order_id) FROM orders';
/** Offsets on a batch make the applier skip its stored-position filter (as Kafka batches do): a true replay. */
const replay = (changes: Parameters<typeof batch>[0]) => ({ ...batch(changes), offsets: [] });

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
    await update([300, 301, 302, 303, 304, 305, 400, 401, 402], 9000n);
    const expected = await one(w, TOTALS);
    const first = await tiering.archive();
    // The month of orders 300-305 got a vector; 400-402 (3 rows) stay inline.
    expect(first.vectors).toBe(1);
    expect(await one(w, TOTALS)).toEqual(expected);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_deletes')).toEqual(['3']);
    const [dv, dvRows] = await one(w, 'SELECT deletion_vector, dv_rows FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL');
    expect(dvRows).toBe('6');
    expect(dv!.startsWith(join(dir, 'warm', '_deletes'))).toBe(true);
    // More deletes of the same file: a new vector with all of them, the old one queued for deletion.
    await update([306, 307, 308, 309, 310], 9100n);
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
    // Compaction at 30% superseded rewrites that cold file (through a warm file moved back to cold) without its rows.
    const compacting = createTiering({ ...opts, warmDays: 180, compactDeletedRatio: 0.3 }, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
    const r = await compacting.archive();
    expect(r.errors).toEqual([]);
    expect(r.compacted.from).toBeGreaterThanOrEqual(1);
    expect(await one(w, TOTALS)).toEqual(more);
    expect(await one(w, 'SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND deletion_vector IS NOT NULL')).toEqual(['0']);
    expect(await one(w, "SELECT count(*) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND tier = 'warm' AND max_time < now() - INTERVAL 180 DAY")).toEqual(['0']);
    // Every archived row located once; the rewritten file's rows keep their version LSNs (order 300's
    // update was archived again by a later pass; order 311 was never updated: its insert's).
    expect(await one(w, "SELECT count(*) = count(DISTINCT key), min(lsn) FILTER (key = '300') FROM _ducktail.tier_locator")).toEqual(['true', '9000']);
    expect(await one(w, `SELECT lsn FROM _ducktail.tier_locator WHERE key = '311'`)).toEqual(['410']);
  }, 90_000);
});
