// Lazy `R` rows (lazy-copy.ts): a raw chunk writes only the current table and the history view derives the
// copied rows' `R` rows until a writer step stores them. Every case runs the same batches on two warehouses,
// one whose table has the hidden copy columns (every table created now) and one whose table was created
// before they existed (its copies store the `R` rows with the chunk, as all copies did before), and requires
// the same history view, current view and time travel from both, with every (lsn, seq) once.
import { DuckDBInstance } from '@duckdb/node-api';
import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, ChangeBatch, TableSchema, TupleValue } from '../change/index.ts';
import { UNCHANGED } from '../change/index.ts';
import { DAY_MS, firstRow, ORDERS, tieringOptionsIn } from '../../test/support/tiering.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics/index.ts';
import { registerPipelineMetrics } from '../pipeline-metrics.ts';
import { createTiering } from '../tiering/index.ts';
import { createWarehouse, type Warehouse } from './index.ts';
import { lockDownInstance } from './query.ts';

const ITEMS: TableSchema = {
  schema: 'public',
  table: 'items',
  columns: [
    { key: true, name: 'id', typeOid: 20, typeMod: -1, attnum: 1 },
    { key: false, name: 'qty', typeOid: 23, typeMod: -1, attnum: 2 },
    { key: false, name: 'note', typeOid: 25, typeMod: -1, attnum: 3 },
  ],
};
/** The same table after ALTER TABLE items DROP COLUMN qty, ADD COLUMN extra text. */
const ITEMS2: TableSchema = {
  ...ITEMS,
  columns: [ITEMS.columns[0]!, ITEMS.columns[2]!, { key: false, name: 'extra', typeOid: 25, typeMod: -1, attnum: 4 }],
};

const temps = tempWarehouses();

const T0 = 1_790_000_000_000_000n;
const ts = (n: number) => T0 + BigInt(n) * 1_000_000n;

function chunk(slot: string, n: number, from: number, count: number, at: bigint, schema = ITEMS): ChangeBatch {
  const lines = Array.from({ length: count }, (_, i) => {
    const id = from + i;
    return schema === ITEMS ? `${id}\t${id % 7}\tnote ${id}\n` : `${id}\tnote ${id}\t\\N\n`;
  }).join('');
  return {
    tables: new Map([['public.items', schema]]),
    changes: [],
    copyChunk: { slot, table: 'public.items', chunk: n, csv: new TextEncoder().encode(lines), rows: count, readAt: 0n, commitTimeUs: at },
  };
}

function change(op: Change['op'], lsn: bigint, seq: number, row: TupleValue[], oldKey?: TupleValue[]): Change {
  return { op, table: 'public.items', row, lsn, seq, commitTimeUs: ts(Number(lsn)), ...(oldKey ? { oldKey } : {}) };
}

function batch(changes: Change[], schema = ITEMS): ChangeBatch {
  return { tables: new Map([['public.items', schema]]), changes };
}

async function open(path: string, backfillSliceRows?: number): Promise<Warehouse> {
  const w = await createWarehouse({ path, memoryLimit: '256MB', threads: 1, stream: 's', backfillSliceRows });
  temps.open.push(w);
  return w;
}

async function rows(w: Warehouse, sql: string): Promise<string[][]> {
  const c = await w.connect();
  try {
    return (await c.runAndReadAll(sql)).getRows().map((r) => r.map((v) => (v === null ? 'NULL' : String(v))));
  } finally {
    c.closeSync();
  }
}

/** Everything a user reads of the table. */
async function view(w: Warehouse) {
  return {
    history: await rows(w, 'SELECT * FROM history.items ORDER BY _lsn, _seq'),
    current: await rows(w, 'SELECT * FROM items ORDER BY id'),
    columns: await rows(w, "SELECT column_name FROM (DESCRIBE items)"),
    twice: await rows(w, 'SELECT count(*) FROM (SELECT _lsn, _seq FROM history.items GROUP BY ALL HAVING count(*) > 1)'),
    atCopy: await rows(w, `SELECT * FROM history.items_at(make_timestamptz(${ts(5)}::BIGINT)) ORDER BY id`),
    atLsn: await rows(w, 'SELECT * FROM history.items_at_lsn(150) ORDER BY id'),
  };
}

/** A warehouse whose items table predates the hidden copy columns (created as every table was before). */
async function legacy(path: string): Promise<Warehouse> {
  const w = await open(path);
  await w.exclusive((c) => c.run('CREATE SCHEMA IF NOT EXISTS _hot; CREATE TABLE _hot."public.items" (id BIGINT, qty INTEGER, note VARCHAR)'));
  return w;
}

test('lazy R rows: the history, current state and time travel equal those of stored R rows, through updates, deletes, a restart, a layout change, a truncate and a re-copy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-lazy-copy-'));
  temps.dirs.push(dir);
  const paths = { lazy: join(dir, 'lazy.duckdb'), stored: join(dir, 'stored.duckdb') };
  const ws = { lazy: await open(paths.lazy), stored: await legacy(paths.stored) };
  const both = async (b: ChangeBatch) => {
    await ws.lazy.apply(b);
    await ws.stored.apply(b);
  };
  const same = async (step: string) => {
    const [a, b] = [await view(ws.lazy), await view(ws.stored)];
    expect({ step, ...a }).toEqual({ step, ...b });
    expect({ step, twice: a.twice }).toEqual({ step, twice: [['0']] });
    return a;
  };

  // The copy: two chunks read at different times (a resumed copy), the reset first.
  await both({ ...batch([{ op: 'T', table: 'public.items', row: [], lsn: 0n, seq: 0, commitTimeUs: ts(1) }]) });
  await both(chunk('s', 0, 1, 50, ts(1)));
  await both(chunk('s', 1, 51, 50, ts(2)));
  // The lazy warehouse stored no history row; the other one 100 `R` rows.
  expect(await firstRow(ws.lazy, 'SELECT count(*) FROM _hot."history.items"')).toEqual(['0']);
  expect(await firstRow(ws.stored, 'SELECT count(*) FROM _hot."history.items"')).toEqual(['100']);
  let v = await same('copied');
  expect(v.history!.length).toBe(100);
  expect(v.columns).toEqual([['id'], ['qty'], ['note']]);

  // Updates, deletes, inserts, a key change, an unchanged TOAST value, a row updated twice in one batch.
  await both(
    batch([
      ...Array.from({ length: 10 }, (_, i) => change('U', 100n, i, [String(i + 1), '100', `updated ${i + 1}`])),
      ...Array.from({ length: 5 }, (_, i) => change('D', 100n, 10 + i, [String(11 + i), null, null])),
      change('I', 100n, 15, ['101', '1', 'new']),
      change('U', 100n, 16, ['216', '16', 'moved'], ['16', null, null]),
      change('U', 100n, 17, ['17', '170', UNCHANGED]),
      change('U', 100n, 18, ['18', '180', 'a']),
      change('U', 100n, 19, ['18', '181', 'b']),
    ]),
  );
  await same('updated');
  await both(batch([change('U', 200n, 0, ['1', '200', 'again']), change('D', 200n, 1, ['20', null, null])]));
  await same('updated again');
  expect(await firstRow(ws.lazy, "SELECT count(*) FROM history.items WHERE _op = 'R'")).toEqual(['100']);

  // A restart: the lazy table is known by its hidden columns.
  for (const k of ['lazy', 'stored'] as const) {
    await ws[k].close();
    temps.open.splice(temps.open.indexOf(ws[k]), 1);
  }
  ws.lazy = await open(paths.lazy);
  ws.stored = await open(paths.stored);
  await both(batch([change('U', 300n, 0, ['21', '300', 'after restart'])]));
  await same('restarted');

  // A layout change (qty dropped, extra added): the copied rows' `R` rows keep qty (as qty__dropped).
  await both(batch([change('U', 400n, 0, ['22', 'with extra', 'x'])], ITEMS2));
  await same('layout changed');
  expect(await firstRow(ws.lazy, 'SELECT count(*) FROM history.items WHERE _op = \'R\' AND qty__dropped IS NOT NULL')).toEqual(['100']);
  expect(await firstRow(ws.lazy, 'SELECT count(*) FROM _hot."public.items" WHERE _ducktail_copy_seq IS NOT NULL')).toEqual(['0']);
  await both(batch([change('D', 500n, 0, ['23', null, null])], ITEMS2));
  await same('after the layout change');

  // A re-copy (its reset empties the table) under the new layout, then a stream truncate.
  await both({ ...batch([{ op: 'T', table: 'public.items', row: [], lsn: 0n, seq: 0, commitTimeUs: ts(600) }], ITEMS2) });
  await both(chunk('s2', 0, 1, 30, ts(600), ITEMS2));
  await same('re-copied');
  expect(await firstRow(ws.lazy, "SELECT count(*), count(DISTINCT _seq) FROM history.items WHERE _op = 'R'")).toEqual(['130', '130']);
  await both(batch([change('U', 700n, 0, ['2', 'x', 'y'])], ITEMS2));
  await same('re-copy updated');
  await both(batch([{ op: 'T', table: 'public.items', row: [], lsn: 800n, seq: 0, commitTimeUs: ts(800) }, change('I', 800n, 1, ['1', 'z', null])], ITEMS2));
  v = await same('truncated');
  expect(v.current).toEqual([['1', 'z', 'NULL']]);

  // DuckDB alone (ducktail stopped) opening the file reads the same history, derived rows included.
  await both(chunk('s2', 1, 31, 20, ts(900), ITEMS2));
  const seen = await view(ws.lazy);
  expect(seen.history.filter((r) => r.includes('R')).length).toBeGreaterThan(0);
  await ws.lazy.close();
  temps.open.splice(temps.open.indexOf(ws.lazy), 1);
  const alone = await DuckDBInstance.create(paths.lazy);
  const c = await alone.connect();
  try {
    const read = async (sql: string) => (await c.runAndReadAll(sql)).getRows().map((r) => r.map((x) => (x === null ? 'NULL' : String(x))));
    expect(await read('SELECT * FROM history.items ORDER BY _lsn, _seq')).toEqual(seen.history);
    expect(await read('SELECT * FROM public.items ORDER BY id')).toEqual(seen.current);
    expect(await read(`SELECT * FROM history.items_at(make_timestamptz(${ts(5)}::BIGINT)) ORDER BY id`)).toEqual(seen.atCopy);
  } finally {
    c.closeSync();
    alone.closeSync();
  }
}, 120_000);

test('lazy R rows: tiering moves copied rows to the warm tier with their R rows stored, the views unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-lazy-tier-'));
  temps.dirs.push(dir);
  const w = await open(join(dir, 'w.duckdb'));
  // 200 copied orders, half of them 400 days old (moved by the pass), half of today (staying hot).
  const now = Date.now();
  const lines = Array.from({ length: 200 }, (_, i) => `${i + 1}\t${(i % 97) + 1}.25\t${new Date(now - (i < 100 ? 400 : 0) * DAY_MS).toISOString()}\n`).join('');
  await w.apply({
    tables: new Map([['public.orders', ORDERS]]),
    changes: [],
    copyChunk: { slot: 's', table: 'public.orders', chunk: 0, csv: new TextEncoder().encode(lines), rows: 200, readAt: 0n, commitTimeUs: BigInt(now - 500 * DAY_MS) * 1000n },
  });
  // One old and one new copied row updated, one of each deleted.
  const at = BigInt(now) * 1000n;
  const row = (id: number, price: string, age: number) => [String(id), price, new Date(now - age * DAY_MS).toISOString()];
  await w.apply({
    tables: new Map([['public.orders', ORDERS]]),
    changes: [
      { op: 'U', table: 'public.orders', row: row(1, '9.99', 400), lsn: 100n, seq: 0, commitTimeUs: at },
      { op: 'U', table: 'public.orders', row: row(150, '9.99', 0), lsn: 100n, seq: 1, commitTimeUs: at },
      { op: 'D', table: 'public.orders', row: [String(2), null, null], lsn: 100n, seq: 2, commitTimeUs: at },
      { op: 'D', table: 'public.orders', row: [String(151), null, null], lsn: 100n, seq: 3, commitTimeUs: at },
    ],
  });
  const read = async () => ({
    history: await rows(w, 'SELECT * FROM history.orders ORDER BY _lsn, _seq'),
    current: await rows(w, 'SELECT * FROM orders ORDER BY order_id'),
    columns: await rows(w, 'SELECT column_name FROM (DESCRIBE orders)'),
  });
  const before = await read();
  expect(before.history.filter((r) => r[3] === 'R').length).toBe(200);
  const opts = tieringOptionsIn(dir);
  const tiering = createTiering(opts, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
  await lockDownInstance(w.instance, { allowedDirectories: [...tiering.readDirs, dir] });
  await tiering.init();
  expect((await tiering.archive()).errors).toEqual([]);
  // The old copied rows left the hot table; their R rows were stored before (and archived with the history).
  // (The history's `R` rows of the copy, 500 days old, all go to the warm tier: below.)
  expect(await firstRow(w, 'SELECT count(*) FROM _hot."public.orders"')).toEqual(['99']);
  expect(await read()).toEqual(before);
  // The archived current files hold no hidden column.
  const files = await rows(w, "SELECT location FROM _ducktail.tier_files WHERE kind = 'current' AND retired_pass IS NULL");
  expect(files.length).toBeGreaterThan(0);
  for (const [f] of files) {
    const cols = (await rows(w, `SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('${f!.replace('file://', '')}'))`)).flat();
    expect(cols.filter((c) => c.startsWith('_ducktail'))).toEqual([]);
  }
  // A second pass changes nothing either.
  expect((await tiering.archive()).errors).toEqual([]);
  expect(await read()).toEqual(before);
  // The copy is 500 days old: every `R` row is as old as the history rows a pass moves, so they were stored
  // and archived like them (the lake holds them as when the copy stored them), none derived any more.
  expect(await firstRow(w, 'SELECT count(*) FROM _hot."public.orders" WHERE _ducktail_copy_seq IS NOT NULL')).toEqual(['0']);
  expect(await firstRow(w, `SELECT count(*) FROM _hot."history.orders" WHERE _op = 'R'`)).toEqual(['0']);
  expect(await firstRow(w, "SELECT sum(row_count) FROM _ducktail.tier_files WHERE kind = 'history' AND retired_pass IS NULL")).toEqual(['200']);
}, 120_000);

test('the backfill stores every copied row\'s R row in slices once the copy is done, stream batches between them and a restart midway; the apply path then joins no more', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-lazy-backfill-'));
  temps.dirs.push(dir);
  const paths = { lazy: join(dir, 'lazy.duckdb'), stored: join(dir, 'stored.duckdb') };
  // Slices of 10 positions: 300 copied rows take 30 slices.
  const ws = { lazy: await open(paths.lazy, 10), stored: await legacy(paths.stored) };
  const both = async (b: ChangeBatch) => {
    await Promise.all([ws.lazy.apply(b), ws.stored.apply(b)]);
  };
  const same = async (step: string) => {
    const [a, b] = [await view(ws.lazy), await view(ws.stored)];
    expect({ step, ...a }).toEqual({ step, ...b });
    expect({ step, twice: a.twice }).toEqual({ step, twice: [['0']] });
    return a;
  };
  const positions = async () => Number((await firstRow(ws.lazy, 'SELECT count(*) FROM _hot."public.items" WHERE _ducktail_copy_seq IS NOT NULL'))[0]);
  const marker = (status: 'copying' | 'done') => ({ tables: new Map(), changes: [], snapshot: { slot: 's', status, consistentPoint: 50n, rows: 300 } });

  await both({ ...batch([{ op: 'T', table: 'public.items', row: [], lsn: 0n, seq: 0, commitTimeUs: ts(1) }]), snapshot: marker('copying').snapshot });
  for (let i = 0; i < 3; i++) await both(chunk('s', i, 1 + 100 * i, 100, ts(1 + i)));
  // The copy is not done: no backfill (its quiet-time start waits for the end marker), and an update joins.
  await both(batch([change('U', 100n, 0, ['1', '100', 'updated'])]));
  expect(ws.lazy.stats.stageMs.copyJoins).toBe(1);
  await Bun.sleep(1500);
  expect(ws.lazy.stats.backfill.slices).toBe(0);
  expect(await positions()).toBe(299);
  const before = await same('copied');

  // The end marker starts it; stream batches (updates, deletes, inserts of copied keys) run between its slices.
  await both(marker('done'));
  let lsn = 200n;
  while (ws.lazy.stats.backfill.slices < 5) {
    const id = Number(lsn / 100n);
    await both(batch([change('U', lsn, 0, [String(id), '1', `during ${lsn}`]), change('D', lsn, 1, [String(id + 150), null, null]), change('I', lsn, 2, [String(1000 + id), '2', 'new'])]));
    lsn += 100n;
  }
  expect(lsn).toBeGreaterThan(200n);
  // A restart midway: the slices done stay done, the rest keep their positions.
  await ws.lazy.close();
  temps.open.splice(temps.open.indexOf(ws.lazy), 1);
  const slices = ws.lazy.stats.backfill.slices;
  expect(slices).toBeLessThan(30);
  ws.lazy = await open(paths.lazy, 10);
  const left = await positions();
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThan(299);
  expect(ws.lazy.stats.backfill.tables).toBe(1);
  await both(batch([change('U', lsn, 0, ['2', '3', 'after restart'])]));
  lsn += 100n;
  // It continues after the restart (the copy being done) without a marker.
  await ws.lazy.backfilled();
  await Bun.sleep(1200);
  await ws.lazy.backfilled();
  expect(ws.lazy.stats.backfill.slices).toBeGreaterThan(0);
  expect(await positions()).toBe(0);
  expect(ws.lazy.stats.backfill.tables).toBe(0);
  expect(await firstRow(ws.lazy, 'SELECT count(*) FROM _hot."history.items" WHERE _op = \'R\'')).toEqual(['300']);
  const after = await same('backfilled');
  // The copy's part of the history is what it was before the backfill (every (0, seq) once, same values).
  expect(after.history.filter((r) => r.includes('R'))).toEqual(before.history.filter((r) => r.includes('R')));

  // No copied row left: updates and deletes of copied keys join nothing more.
  const joins = ws.lazy.stats.stageMs.copyJoins;
  await both(batch([change('U', lsn, 0, ['3', '4', 'no join']), change('D', lsn, 1, ['4', null, null])]));
  expect(ws.lazy.stats.stageMs.copyJoins).toBe(joins);
  await same('after the backfill');
  // A re-copy brings positions back: the stream joins again until its backfill (quiet time, no marker) ends.
  await both({ ...batch([{ op: 'T', table: 'public.items', row: [], lsn: 0n, seq: 0, commitTimeUs: ts(900) }]) });
  // The update is queued behind the chunk before either settles: the backfill's quiet-time start (1 s after the
  // chunk) queues behind it, however slow the box, so the update meets the positions.
  await Promise.all([both(chunk('s2', 0, 1, 40, ts(900))), both(batch([change('U', lsn + 100n, 0, ['5', '5', 're-copied'])]))]);
  expect(ws.lazy.stats.stageMs.copyJoins).toBe(joins + 1);
  await same('re-copied');
  const deadline = Date.now() + 30_000;
  while ((await positions()) > 0 && Date.now() < deadline) await Bun.sleep(50);
  await ws.lazy.backfilled();
  expect(await positions()).toBe(0);
  expect(ws.lazy.stats.backfill.tables).toBe(0);
  await both(batch([change('U', lsn + 200n, 0, ['6', '6', 'no join again'])]));
  expect(ws.lazy.stats.stageMs.copyJoins).toBe(joins + 1);
  await same('re-copy backfilled');
}, 120_000);

test('the backfill shows in /metrics and /v1/status: tables pending while copied rows lack their R row, rows stored, none pending after', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-lazy-metrics-'));
  temps.dirs.push(dir);
  const w = await open(join(dir, 'w.duckdb'), 50);
  const m = createMetrics();
  registerPipelineMetrics(m, { source: () => null, dbPath: join(dir, 'w.duckdb'), backfill: () => w.stats.backfill });
  const scrape = async () => {
    const text = (await m.render()).text;
    const v = (name: string) => Number(text.split('\n').find((l) => l.startsWith(`ducktail_${name} `))?.split(' ')[1]);
    return { pending: v('copy_backfill_tables_pending'), rows: v('copy_backfill_rows_total'), failed: v('copy_backfill_failed') };
  };
  expect(await scrape()).toEqual({ pending: 0, rows: 0, failed: 0 });
  await w.apply(chunk('s', 0, 1, 120, ts(5)));
  // The chunk's table counts at once, before the backfill's quiet second has passed.
  expect((await scrape()).pending).toBe(1);
  expect(JSON.parse(JSON.stringify(w.stats)).backfill.tables).toBe(1);
  await Bun.sleep(1200);
  await w.backfilled();
  expect(await scrape()).toEqual({ pending: 0, rows: 120, failed: 0 });
  expect(w.stats.backfill.error).toBeNull();
});
