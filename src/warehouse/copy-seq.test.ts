// A copy whose rows arrive as changes (the Kafka bus) and starts over: the source numbers every copy's 'R' rows
// from 0, so unless the warehouse numbers them itself from past the history's (copy-seq.ts) the history holds
// (0, seq) twice (6,973 pairs in test/integration/kafka-copy-kill.test.ts's first run), and an interrupted
// copy's partial last send leaves gaps. Each case fails on main a046283 (before copy-seq.ts).
import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, ChangeBatch, PartitionOffset, TableSchema } from '../change/index.ts';
import { createWarehouse, type Warehouse } from './index.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';

const ITEMS: TableSchema = {
  schema: 'public',
  table: 'items',
  columns: [
    { key: true, name: 'id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'qty', typeOid: 23, typeMod: -1 },
  ],
};

const { dirs, open } = tempWarehouses();

async function warehouse(path?: string): Promise<{ w: Warehouse; path: string }> {
  let p = path;
  if (!p) {
    const dir = mkdtempSync(join(tmpdir(), 'ducktail-copy-seq-'));
    dirs.push(dir);
    p = join(dir, 'w.duckdb');
  }
  const w = await createWarehouse({ path: p, memoryLimit: '256MB', threads: 1, stream: 'kafka' });
  open.push(w);
  return { w, path: p };
}

/** A Kafka consumer's batch (offsets set: not filtered by the stream position). */
function batch(changes: Change[]): ChangeBatch {
  const offsets: PartitionOffset[] = [{ topic: 'k.public.items', partition: 0, next: 1n, lsn: 0n, ord: 0 }];
  return { tables: new Map([['public.items', ITEMS]]), changes, offsets };
}

const reset = (): Change => ({ op: 'T', table: 'public.items', row: [], lsn: 0n, seq: 0, commitTimeUs: 1n });
/** The copy's rows of keys `ids`, numbered as the source numbers them (from `from`). */
const copied = (ids: number[], from = 0, commitTimeUs = 1n): Change[] =>
  ids.map((id, i) => ({ op: 'R', table: 'public.items', row: [String(id), String(id % 7)], lsn: 0n, seq: from + i, commitTimeUs }));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function one(w: Warehouse, sql: string): Promise<number[]> {
  const c = await w.connect();
  try {
    return (await c.runAndReadAll(sql)).getRows()[0]!.map(Number);
  } finally {
    c.closeSync();
  }
}

const TWICE = 'SELECT count(*) FROM (SELECT _lsn, _seq FROM history.items GROUP BY ALL HAVING count(*) > 1)';
/** Positions missing at each lsn: seqs not in 0..max (the soak's check, test/soak/verify.ts). */
const GAPS = 'SELECT coalesce(sum(max_seq + 1 - seqs), 0) FROM (SELECT _lsn, max(_seq) AS max_seq, count(DISTINCT _seq) AS seqs FROM history.items GROUP BY _lsn)';

test('a copy that starts over after an interrupted one: its R rows continue past the history, no (0, seq) twice', async () => {
  const { w } = await warehouse();
  await w.apply(batch([reset(), ...copied(range(1, 40))])); // the interrupted copy: 40 of 100 rows
  await w.apply(batch([reset(), ...copied(range(1, 60))])); // the copy from zero, its first 60 rows
  await w.apply(batch(copied(range(61, 100), 60)));
  expect(await one(w, TWICE)).toEqual([0]);
  expect(await one(w, GAPS)).toEqual([0]);
  expect(await one(w, "SELECT count(*), count(DISTINCT _seq), min(_seq), max(_seq) FROM history.items WHERE _op = 'R'")).toEqual([140, 140, 0, 139]);
  // The second copy's rows are the ones from the base on: every key once, as the mirror holds it.
  expect(await one(w, "SELECT count(*), count(DISTINCT id) FROM history.items WHERE _op = 'R' AND _seq >= 40")).toEqual([100, 100]);
  expect(await one(w, 'SELECT count(*), sum(id) FROM items')).toEqual([100, 5050]);
  expect(await one(w, 'SELECT base FROM _ducktail.copy_seq_base')).toEqual([40]);
  // The last copy's image of each key is the one with the highest (_lsn, _seq): what time travel shows.
  expect(await one(w, "SELECT count(*) FROM history.items_at(now()) WHERE id <= 100")).toEqual([100]);
});

test('the base survives a restart in the middle of the copy, and a re-copy after a finished one starts past it', async () => {
  const { w, path } = await warehouse();
  await w.apply(batch([reset(), ...copied(range(1, 30))]));
  await w.apply(batch([reset(), ...copied(range(1, 10))]));
  await w.close();
  open.length = 0;
  const { w: again } = await warehouse(path);
  await again.apply(batch(copied(range(11, 30), 10))); // the rest of the copy, after the restart
  expect(await one(again, TWICE)).toEqual([0]);
  expect(await one(again, "SELECT min(_seq), max(_seq), count(DISTINCT id) FROM history.items WHERE _op = 'R' AND _seq >= 30")).toEqual([30, 59, 30]);
  await again.apply(batch([reset(), ...copied(range(1, 30))])); // a re-copy (resnapshot, a partition's gap)
  expect(await one(again, TWICE)).toEqual([0]);
  expect(await one(again, "SELECT min(_seq), max(_seq) FROM history.items WHERE _op = 'R' AND _seq >= 60")).toEqual([60, 89]);
});

test('two instances splitting the partitions: each history is clean on its own, and their last copies hold every key once', async () => {
  // Every partition carries the reset; a row goes to one partition (here: odd keys to instance 0, even to 1).
  const { w: a } = await warehouse();
  const { w: b } = await warehouse();
  const split = (changes: Change[], odd: boolean) => changes.filter((c) => c.op !== 'R' || Number(c.row[0]) % 2 === (odd ? 1 : 0));
  const first = [reset(), ...copied(range(1, 25))];
  const second = [reset(), ...copied(range(1, 50))];
  for (const [w, odd] of [[a, true], [b, false]] as const) {
    await w.apply(batch(split(first, odd)));
    await w.apply(batch(split(second, odd)));
    expect(await one(w, TWICE)).toEqual([0]);
    expect(await one(w, 'SELECT count(*) FROM items')).toEqual([25]);
  }
  const latest = async (w: Warehouse) =>
    one(w, "SELECT count(*), sum(id) FROM history.items WHERE _op = 'R' AND _seq >= (SELECT base FROM _ducktail.copy_seq_base)");
  const [na, sa] = await latest(a);
  const [nb, sb] = await latest(b);
  expect([na! + nb!, sa! + sb!]).toEqual([50, 1275]);
});

test('what reached Kafka of an interrupted copy is any subset of its last send, applied partition by partition: numbered as applied, no gap', async () => {
  const { w } = await warehouse();
  // Partition 0 got its part of the last send (source seqs 30-39 of keys 31-40), partition 1 did not (25-29).
  const interrupted = copied(range(1, 40)).filter((c) => c.seq < 25 || c.seq >= 30);
  const [p0, p1] = [interrupted.filter((c) => c.seq % 2 === 0), interrupted.filter((c) => c.seq % 2 === 1)];
  await w.apply(batch([reset(), ...p1.slice(0, 5)]));
  await w.apply(batch([...p0, ...p1.slice(5)])); // partitions interleave: not in the source's order
  await w.apply(batch([reset(), ...copied(range(1, 50))]));
  expect(await one(w, TWICE)).toEqual([0]);
  expect(await one(w, GAPS)).toEqual([0]);
  expect(await one(w, "SELECT count(*), min(_seq), max(_seq) FROM history.items WHERE _op = 'R' AND _seq < 35")).toEqual([35, 0, 34]);
  expect(await one(w, "SELECT count(DISTINCT id), min(_seq), max(_seq) FROM history.items WHERE _op = 'R' AND _seq >= 35")).toEqual([50, 35, 84]);
  expect(await one(w, 'SELECT base, next_seq FROM _ducktail.copy_seq_base')).toEqual([35, 85]);
});
