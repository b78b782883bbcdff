import { expect, test } from 'bun:test';
import type { Change } from '../change/index.ts';
import { collapseChanges, keyFunction } from './collapse.ts';
import type { MirrorTable } from './tables.ts';

const mirror = { name: 'public.t' } as MirrorTable;
const keyOf = keyFunction([0]);
const change = (op: Change['op'], row: string[], seq: number): Change => ({ op, table: 'public.t', row, lsn: 100n, seq, commitTimeUs: 1n });
const flags = (rows: ReturnType<typeof collapseChanges>['rows']) => rows.map((r) => [r.row[0], r.history, r.final, r.deleted, r.replaces]);

test('an insert-only batch: every row final, fresh (nothing to replace), in history', () => {
  const c = collapseChanges(mirror, [change('I', ['1', 'a'], 0), change('I', ['2', 'b'], 1)], new Map(), keyOf);
  expect(flags(c.rows)).toEqual([['1', true, true, false, false], ['2', true, true, false, false]]);
  expect(c.lastLsn).toBe(100n);
  expect(c.truncate).toBe(false);
});

test('a key inserted twice (REPLICA IDENTITY FULL, or after a delete) keeps only its last row final', () => {
  const dup = collapseChanges(mirror, [change('I', ['1', 'a'], 0), change('I', ['1', 'a'], 1)], new Map(), keyOf);
  expect(flags(dup.rows)).toEqual([['1', true, false, false, false], ['1', true, true, false, false]]);
  const mixed = collapseChanges(mirror, [change('I', ['1', 'a'], 0), change('D', ['1', 'a'], 1), change('I', ['1', 'b'], 2)], new Map(), keyOf);
  expect(flags(mixed.rows)).toEqual([['1', true, false, false, false], ['1', true, false, true, false], ['1', true, true, false, false]]);
});
