import type { Change, TupleValue } from '../change/index.ts';
import { UNCHANGED } from '../change/index.ts';
import { AppError } from '../errors.ts';
import type { StagedRow } from './stage.ts';
import type { MirrorTable } from './tables.ts';

/** A batch of one table reduced to what the warehouse writes. */
export interface Collapsed {
  rows: StagedRow[];
  truncate: boolean;
  /** Highest commit LSN among the changes (0 for snapshot rows). */
  lastLsn: bigint;
}

/** Map key of a row's key columns. PostgreSQL text never holds NUL, so NUL-marked parts cannot collide. */
export function keyFunction(keyIndexes: readonly number[]): (row: readonly TupleValue[]) => string {
  if (keyIndexes.length === 1) {
    const k = keyIndexes[0]!;
    return (row) => keyPart(row[k]);
  }
  return (row) => {
    let s = '';
    for (const i of keyIndexes) s += `${keyPart(row[i])}\u0000,`;
    return s;
  };
}

function keyPart(v: TupleValue | undefined): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '\u0000N';
  if (v === UNCHANGED) return '\u0000U';
  return `\u0000B${Buffer.from(v).toString('hex')}`;
}

/**
 * Turns one table's changes (in commit order) into staged rows: every change once (its history
 * row), the last row per key marked final, unchanged TOAST filled from earlier rows of the batch or
 * from `base` (the warehouse's current rows). Keys whose first change here is an insert need no
 * delete of an older mirror row (PostgreSQL's key was free), which keeps inserts a pure append.
 * Changes at or before `replayUntil` replay over rows a resumed copy read later (src/warehouse/copy.ts):
 * their inserts replace, and an update whose row the copy no longer had is skipped (see src/source/README.md).
 */
export function collapseChanges(
  mirror: MirrorTable,
  changes: readonly Change[],
  base: Map<string, readonly TupleValue[]>,
  keyOf: (row: readonly TupleValue[]) => string,
  replayUntil = 0n,
): Collapsed {
  const replay = replayUntil > 0n && changes.some((c) => c.lsn !== 0n && c.lsn <= replayUntil);
  const inserts = replay ? null : insertsOnly(changes, keyOf);
  if (inserts) return inserts;
  const rows: StagedRow[] = [];
  const finals = new Map<string, StagedRow>();
  const fresh = new Set<string>();
  const seen = new Set<string>();
  let truncate = false;
  let lastLsn = 0n;
  const stage = (c: Change, row: readonly TupleValue[], history: boolean, deleted: boolean): StagedRow => {
    const s: StagedRow = {
      op: c.op,
      lsn: c.lsn,
      seq: c.seq,
      commitTimeUs: c.commitTimeUs,
      row,
      history,
      final: false,
      deleted,
      replaces: false,
    };
    rows.push(s);
    return s;
  };
  for (const c of changes) {
    if (c.lsn > lastLsn) lastLsn = c.lsn;
    switch (c.op) {
      case 'R':
      case 'I': {
        const key = keyOf(c.row);
        if (!seen.has(key)) {
          seen.add(key);
          if (!replay || c.lsn === 0n || c.lsn > replayUntil) fresh.add(key);
        }
        finals.set(key, stage(c, c.row, true, false));
        break;
      }
      case 'U': {
        const key = keyOf(c.row);
        const fromKey = c.oldKey ? keyOf(c.oldKey) : key;
        const previous = finals.get(fromKey)?.row ?? base.get(fromKey);
        // Replayed over a later copy that no longer had the row: it was deleted or moved before that copy.
        if (!previous && replay && c.lsn <= replayUntil && fromKey === key && c.row.includes(UNCHANGED)) break;
        const row = c.row.includes(UNCHANGED) ? fillUnchanged(mirror, c, previous) : c.row;
        seen.add(fromKey);
        if (fromKey !== key) finals.set(fromKey, stage(c, c.oldKey!, false, true));
        seen.add(key);
        finals.set(key, stage(c, row, true, false));
        break;
      }
      case 'D': {
        const key = keyOf(c.row);
        seen.add(key);
        finals.set(key, stage(c, c.row, true, true));
        break;
      }
      case 'T':
        // Everything before is gone: no final row of earlier changes, and no key is left in the mirror.
        finals.clear();
        truncate = true;
        // A snapshot's reset (lsn 0) is bookkeeping, not a change of the source: no history row.
        if (c.lsn !== 0n) stage(c, [], true, false);
        break;
      default: {
        const never: never = c.op;
        throw new AppError('BATCH_BAD_OP', `unknown change op ${String(never)}`);
      }
    }
  }
  for (const [key, s] of finals) {
    s.final = true;
    s.replaces = !truncate && !fresh.has(key);
  }
  return { rows, truncate, lastLsn };
}

/**
 * The usual catch-up batch: only inserts (or copied rows), no key twice. Every change is then its
 * key's final row and a fresh key (no mirror row to replace): one key set instead of the general
 * bookkeeping. Null for any other batch.
 */
function insertsOnly(changes: readonly Change[], keyOf: (row: readonly TupleValue[]) => string): Collapsed | null {
  const keys = new Set<string>();
  let lastLsn = 0n;
  for (const c of changes) {
    if (c.op !== 'I' && c.op !== 'R') return null;
    keys.add(keyOf(c.row));
    if (c.lsn > lastLsn) lastLsn = c.lsn;
  }
  if (keys.size !== changes.length) return null;
  const rows = changes.map(
    (c): StagedRow => ({
      op: c.op,
      lsn: c.lsn,
      seq: c.seq,
      commitTimeUs: c.commitTimeUs,
      row: c.row,
      history: true,
      final: true,
      deleted: false,
      replaces: false,
    }),
  );
  return { rows, truncate: false, lastLsn };
}

/** Keys whose current row must be read from DuckDB: updates with unchanged TOAST of rows not seen earlier in the batch. */
export function keysToLookUp(changes: readonly Change[], keyOf: (row: readonly TupleValue[]) => string): TupleValue[][] {
  if (!changes.some((c) => c.op === 'U' && c.row.includes(UNCHANGED))) return [];
  const seen = new Set<string>();
  const wanted = new Map<string, TupleValue[]>();
  for (const c of changes) {
    if (c.op === 'T') {
      seen.clear();
      continue;
    }
    const key = keyOf(c.row);
    if (c.op === 'U' && c.row.includes(UNCHANGED)) {
      const from = c.oldKey ?? c.row;
      const fromKey = keyOf(from);
      if (!seen.has(fromKey)) wanted.set(fromKey, from.map((v) => (v === UNCHANGED ? null : v)));
    }
    seen.add(key);
  }
  return [...wanted.values()];
}

/** Replaces UNCHANGED values with the previous row's values; a missing previous row is an error, never a NULL. */
function fillUnchanged(mirror: MirrorTable, c: Change, previous: readonly TupleValue[] | undefined): TupleValue[] {
  if (!previous) {
    throw new AppError(
      'TOAST_BASE_MISSING',
      `update of ${mirror.name} at lsn ${c.lsn} has unchanged TOAST values but the warehouse has no current row ` +
        `for its key: the mirror has diverged; re-snapshot the table (or set REPLICA IDENTITY FULL on it)`,
    );
  }
  return c.row.map((v, i) => (v === UNCHANGED ? (previous[i] ?? null) : v));
}
