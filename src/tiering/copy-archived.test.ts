// A copy of a table whose earlier copy's history rows were archived: the new copy's `_seq` at `_lsn` 0 must
// continue past the archived ones too (the base is read from every tier, not the hot history alone), or the
// history holds (0, seq) twice. A resnapshot or a re-copy a month after the initial copy meets exactly this.
import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChangeBatch } from '../change/index.ts';
import { createLogger } from '../log.ts';
import { createWarehouse, type Warehouse } from '../warehouse/index.ts';
import { lockDownInstance } from '../warehouse/query.ts';
import { DAY_MS, firstRow, ORDERS, tieringOptionsIn } from '../../test/support/tiering.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { createTiering } from './index.ts';

const temps = tempWarehouses();

/** A copied chunk of `n` orders (ids from `from`), read `ageDays` ago, as the source hands it over. */
function chunk(slot: string, from: number, n: number, ageDays: number): ChangeBatch {
  const at = Date.now() - ageDays * DAY_MS;
  const date = new Date(at).toISOString();
  const lines = Array.from({ length: n }, (_, i) => `${from + i}\t${(i % 97) + 1}.25\t${date}\n`).join('');
  return {
    tables: new Map([['public.orders', ORDERS]]),
    changes: [],
    copyChunk: { slot, table: 'public.orders', chunk: 0, csv: new TextEncoder().encode(lines), rows: n, readAt: 0n, commitTimeUs: BigInt(at) * 1000n },
  };
}

async function open(path: string): Promise<Warehouse> {
  const w = await createWarehouse({ path, memoryLimit: '256MB', threads: 1, stream: 's' });
  temps.open.push(w);
  return w;
}

const TWICE = 'SELECT count(*) FROM (SELECT _lsn, _seq FROM history.orders GROUP BY ALL HAVING count(*) > 1)';

test('a re-copy after the first copy was archived numbers its rows past the archived ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-copy-archived-'));
  temps.dirs.push(dir);
  const path = join(dir, 'w.duckdb');
  let w = await open(path);
  await w.apply(chunk('first', 1, 100, 400)); // the initial copy, 400 days ago
  const opts = tieringOptionsIn(dir);
  const tiering = createTiering(opts, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
  await lockDownInstance(w.instance, { allowedDirectories: [...tiering.readDirs, dir] });
  await tiering.init();
  expect((await tiering.archive()).errors).toEqual([]);
  // Every copied history row left the hot table; the view still shows them.
  expect(await firstRow(w, 'SELECT count(*) FROM _hot."history.orders"')).toEqual(['0']);
  expect(await firstRow(w, 'SELECT count(*), min(_seq), max(_seq) FROM history.orders WHERE _lsn = 0')).toEqual(['100', '0', '99']);

  // A restart (nothing cached), then a re-copy of the table.
  await w.close();
  temps.open.length = 0;
  w = await open(path);
  await lockDownInstance(w.instance, { allowedDirectories: [...tiering.readDirs, dir] });
  // The re-copy begins as every copy does: the table's mirror is emptied (a truncate at lsn 0), then its chunks load.
  const again = chunk('again', 1, 100, 0);
  again.changes = [{ op: 'T', table: 'public.orders', row: [], lsn: 0n, seq: 0, commitTimeUs: again.copyChunk!.commitTimeUs }];
  await w.apply(again);
  expect(await firstRow(w, TWICE)).toEqual(['0']);
  expect(await firstRow(w, 'SELECT count(*), min(_seq), max(_seq) FROM history.orders WHERE _lsn = 0')).toEqual(['200', '0', '199']);
  expect(await firstRow(w, 'SELECT count(*), sum(order_id) FROM orders')).toEqual(['100', '5050']);
}, 60_000);
