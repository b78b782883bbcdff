import type { DuckDBConnection } from '@duckdb/node-api';
import type { Change, ChangeBatch } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { type TupleValue, UNCHANGED } from '../change/index.ts';
import { Progress, type Position } from './offsets.ts';
import { type FinalRow, type HistoryRow, Stage, type StageTimings } from './stage.ts';
import type { MirrorCatalog, MirrorTable } from './tables.ts';

/** What one apply did. */
export interface ApplyResult {
  applied: number;
  skipped: number;
  durationMs: number;
}

/** True when the change is at or before the stored position (already applied). Snapshot rows (lsn 0) never are. */
export function alreadyApplied(c: Change, pos: Position): boolean {
  if (c.lsn === 0n) return false;
  return c.lsn < pos.lsn || (c.lsn === pos.lsn && c.seq <= pos.seq);
}

/**
 * Applies change batches to the mirror and history tables in one DuckDB transaction each,
 * together with the stream's position: a replayed change is skipped, never applied twice.
 */
export class BatchApplier {
  private readonly stages = new Map<string, Stage>();
  private stageSeq = 0;
  readonly timings: StageTimings = {
    collapseMs: 0,
    lookupMs: 0,
    appendMs: 0,
    currentMs: 0,
    historyMs: 0,
    clearMs: 0,
    commitMs: 0,
  };

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly catalog: MirrorCatalog,
    readonly progress: Progress,
  ) {}

  /** Applies one batch; resolves after COMMIT. */
  async apply(batch: ChangeBatch): Promise<ApplyResult> {
    const started = performance.now();
    const pos = this.progress.current;
    // Kafka batches interleave partitions (not in (lsn, seq) order); the consumer dedups them per partition.
    const todo = batch.offsets ? batch.changes : batch.changes.filter((c) => !alreadyApplied(c, pos));
    const skipped = batch.changes.length - todo.length;
    const nextAck = batch.ackLsn !== undefined && batch.ackLsn > pos.ackLsn ? batch.ackLsn : pos.ackLsn;
    if (todo.length === 0 && nextAck === pos.ackLsn && !batch.snapshot && !batch.offsets?.length) {
      return { applied: 0, skipped, durationMs: performance.now() - started };
    }
    await this.conn.run('BEGIN TRANSACTION');
    try {
      for (const [name, changes] of groupByTable(todo)) {
        const schema = batch.tables.get(name);
        if (!schema) throw new AppError('BATCH_MISSING_TABLE', `batch has changes of ${name} but not its schema`);
        const mirror = await this.catalog.ensure(schema);
        await this.applyTable(mirror, changes);
      }
      const tc = performance.now();
      const last = batch.offsets ? undefined : todo.findLast((c) => c.lsn !== 0n);
      const next: Position = last ? { lsn: last.lsn, seq: last.seq, ackLsn: nextAck } : { ...pos, ackLsn: nextAck };
      await this.progress.write(next);
      if (batch.snapshot) await this.progress.writeSnapshot(batch.snapshot);
      if (batch.offsets) await this.progress.writeOffsets(batch.offsets);
      await this.conn.run('COMMIT');
      this.progress.committed(next);
      this.timings.commitMs += performance.now() - tc;
    } catch (e) {
      await this.conn.run('ROLLBACK').catch(() => {});
      this.catalog.reset();
      this.stages.clear();
      throw e;
    }
    return { applied: todo.length, skipped, durationMs: performance.now() - started };
  }

  private async stageFor(mirror: MirrorTable): Promise<Stage> {
    const layout = `${mirror.name}:${mirror.columns.length}`;
    let stage = this.stages.get(layout);
    if (!stage) {
      stage = await Stage.create(this.conn, mirror, String(this.stageSeq++));
      this.stages.set(layout, stage);
    }
    return stage;
  }

  /** Collapses the table's changes to a final state per key, fills unchanged TOAST, stages and moves them. */
  private async applyTable(mirror: MirrorTable, changes: Change[]): Promise<void> {
    const keyOf = (row: readonly TupleValue[]) => JSON.stringify(mirror.keyIndexes.map((i) => row[i] ?? null));
    const stage = await this.stageFor(mirror);
    let t0 = performance.now();
    const base = await stage.lookup(keysToLookUp(changes, keyOf), keyOf);
    this.timings.lookupMs += performance.now() - t0;
    t0 = performance.now();
    const finals = new Map<string, FinalRow>();
    const history: HistoryRow[] = [];
    let truncate = false;
    let insertOnly = true;
    for (const c of changes) {
      if (c.op !== 'R') insertOnly = false;
      switch (c.op) {
        case 'R':
        case 'I':
          finals.set(keyOf(c.row), { row: c.row, deleted: false });
          history.push({ op: c.op, lsn: c.lsn, seq: c.seq, commitTimeUs: c.commitTimeUs, row: c.row });
          break;
        case 'U': {
          const key = keyOf(c.row);
          const fromKey = c.oldKey ? keyOf(c.oldKey) : key;
          const row = c.row.includes(UNCHANGED)
            ? fillUnchanged(mirror, c, finals.get(fromKey)?.row ?? base.get(fromKey))
            : c.row;
          if (fromKey !== key) finals.set(fromKey, { row: c.oldKey!, deleted: true });
          finals.set(key, { row, deleted: false });
          history.push({ op: 'U', lsn: c.lsn, seq: c.seq, commitTimeUs: c.commitTimeUs, row });
          break;
        }
        case 'D':
          finals.set(keyOf(c.row), { row: c.row, deleted: true });
          history.push({ op: 'D', lsn: c.lsn, seq: c.seq, commitTimeUs: c.commitTimeUs, row: c.row });
          break;
        case 'T':
          finals.clear();
          truncate = true;
          // A snapshot's reset (lsn 0) is bookkeeping, not a change of the source: no history row.
          if (c.lsn !== 0n) history.push({ op: 'T', lsn: c.lsn, seq: c.seq, commitTimeUs: c.commitTimeUs, row: [] });
          break;
        default: {
          const never: never = c.op;
          throw new AppError('BATCH_BAD_OP', `unknown change op ${String(never)}`);
        }
      }
    }
    this.timings.collapseMs += performance.now() - t0;
    await stage.apply(finals.values(), history, truncate, insertOnly, this.timings);
  }
}

function groupByTable(changes: Change[]): Map<string, Change[]> {
  const groups = new Map<string, Change[]>();
  for (const c of changes) {
    const g = groups.get(c.table);
    if (g) g.push(c);
    else groups.set(c.table, [c]);
  }
  return groups;
}

/** Keys whose current row must be read from DuckDB: updates with unchanged TOAST of rows not seen earlier in the batch. */
function keysToLookUp(changes: Change[], keyOf: (row: readonly TupleValue[]) => string): TupleValue[][] {
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
