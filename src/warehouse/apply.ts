import type { DuckDBConnection } from '@duckdb/node-api';
import type { Change, ChangeBatch } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { collapseChanges, keyFunction, keysToLookUp } from './collapse.ts';
import { CopyChunks } from './copy.ts';
import { CopySeqBases } from './copy-seq.ts';
import { Progress, type Position } from './offsets.ts';
import { Stage, type StageTimings } from './stage.ts';
import type { MirrorCatalog, MirrorTable } from './tables.ts';

/** What one apply did. */
export interface ApplyResult {
  applied: number;
  skipped: number;
  /** Values stored as NULL for not fitting their column exactly (kept in `_ducktail.unfit_values`). */
  unfit: number;
  durationMs: number;
}

/** True when the change is at or before the stored position (already applied). Snapshot rows (lsn 0) never are. */
export function alreadyApplied(c: Change, pos: Position): boolean {
  if (c.lsn === 0n) return false;
  return c.lsn < pos.lsn || (c.lsn === pos.lsn && c.seq <= pos.seq);
}

/**
 * Whether some change of the batch may be at or before `pos`. Changes come in commit order, (lsn, seq)
 * ascending, snapshot rows (lsn 0) aside: when the first streamed change is after `pos`, all are.
 */
function replayed(batch: ChangeBatch, pos: Position): boolean {
  const first = batch.changes.find((c) => c.lsn !== 0n);
  return first !== undefined && alreadyApplied(first, pos);
}

/**
 * Applies change batches to the mirror and history tables in one DuckDB transaction each,
 * together with the stream's position: a replayed change is skipped, never applied twice.
 */
export class BatchApplier {
  private readonly stages = new Map<string, Stage>();
  private stageSeq = 0;
  /** The initial copy's chunks (bookkeeping, loads, replay windows of a resumed copy). */
  readonly copies: CopyChunks;
  /** The `_seq` base of each table's present copy, for its 'R' rows that arrive as changes (copy-seq.ts). */
  private readonly copySeq: CopySeqBases;
  readonly timings: StageTimings = {
    collapseMs: 0,
    lookupMs: 0,
    stageMs: 0,
    currentMs: 0,
    historyMs: 0,
    clearMs: 0,
    beginMs: 0,
    commitMs: 0,
    directAppends: 0,
    copyJoins: 0,
  };

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly catalog: MirrorCatalog,
    readonly progress: Progress,
    /** Folder for the staging files (inside the DuckDB lock-down's allowed directories). */
    private readonly stageDir: string,
  ) {
    this.copies = new CopyChunks(conn, stageDir);
    this.copySeq = new CopySeqBases(conn);
    progress.beforeRead = () => this.settle();
  }

  /** Applies one batch; resolves after COMMIT. */
  async apply(batch: ChangeBatch): Promise<ApplyResult> {
    const started = performance.now();
    const pos = this.progress.current;
    // Kafka batches interleave partitions (not in (lsn, seq) order); the consumer dedups them per partition.
    const todo = batch.offsets || batch.catchUp || !replayed(batch, pos) ? batch.changes : batch.changes.filter((c) => !alreadyApplied(c, pos));
    const skipped = batch.changes.length - todo.length;
    const nextAck = batch.ackLsn !== undefined && batch.ackLsn > pos.ackLsn ? batch.ackLsn : pos.ackLsn;
    if (todo.length === 0 && nextAck === pos.ackLsn && !batch.snapshot && !batch.offsets?.length && !batch.layouts?.length && !batch.copyChunk && !batch.copyHandoff) {
      return { applied: 0, skipped, unfit: 0, durationMs: performance.now() - started };
    }
    let unfit = 0;
    let copied = 0;
    const tb = performance.now();
    await this.begin();
    this.timings.beginMs += performance.now() - tb;
    try {
      for (const layout of batch.layouts ?? []) await this.catalog.ensure(layout);
      for (const [name, changes] of groupByTable(todo)) {
        const schema = batch.tables.get(name);
        if (!schema) throw new AppError('BATCH_MISSING_TABLE', `batch has changes of ${name} but not its schema`);
        // A copy (or re-copy) starts with a reset: a type DuckDB cannot convert is then replaced, not converted.
        const reset = changes[0]!.op === 'T' && changes[0]!.lsn === 0n;
        const mirror = await this.catalog.ensure(schema, { reset });
        if (reset) await this.copySeq.reset(mirror);
        unfit += await this.applyTable(mirror, await this.copySeq.shift(mirror, changes));
      }
      if (batch.copyChunk) {
        const loaded = await this.applyChunk(batch);
        copied = loaded.rows;
        unfit += loaded.unfit;
      }
      const tc = performance.now();
      const last = batch.offsets || batch.catchUp ? undefined : todo.findLast((c) => c.lsn !== 0n);
      let next: Position = last ? { lsn: last.lsn, seq: last.seq, ackLsn: nextAck } : { ...pos, ackLsn: nextAck };
      // A whole new copy starts the stream over at its consistent point, also when that is behind the stored
      // position (a source restored from a backup writes new changes at positions already seen).
      if (batch.snapshot?.status === 'copying') next = { lsn: 0n, seq: -1, ackLsn: batch.snapshot.consistentPoint };
      if (batch.snapshot) await this.progress.writeSnapshot(batch.snapshot);
      if (batch.copyPlan) await this.copies.plan(batch.copyPlan.slot, batch.copyPlan.chunks);
      if (batch.copyHandoff) await this.copies.handoff(batch.copyHandoff);
      // The position, the Kafka partitions' offsets and COMMIT in one round trip (was 3 + 6 + 1: a statement
      // with parameters is three). The apply is the pipeline's serial step and every await of it waits its
      // turn on a busy JS thread and a busy box (docs/PERFORMANCE.md, "Kafka: eighth pass (consumer)").
      await this.progress.writeAndCommit(next, batch.offsets);
      this.progress.committed(next);
      this.timings.commitMs += performance.now() - tc;
      if (batch.copyChunk) await this.copies.load();
      this.beginEarly();
    } catch (e) {
      await this.conn.run('ROLLBACK').catch(() => {});
      this.catalog.reset();
      this.copies.reset();
      this.copySeq.forget();
      this.stages.clear();
      throw e;
    }
    return { applied: todo.length + copied, skipped, unfit, durationMs: performance.now() - started };
  }

  /**
   * A BEGIN sent as the last apply ended, for the next one: its round trip to DuckDB's threads and back
   * is then off the apply's path (it took 14-17 ms a batch there on a busy box: docs/PERFORMANCE.md, "Kafka:
   * ninth pass"). DuckDB starts a transaction lazily, at its first read or write, not at BEGIN, so the
   * next batch sees what other connections committed meanwhile as with a BEGIN of its own. Null when none
   * is open; anything else on the writer connection first ends it (`settle`).
   */
  private early: Promise<void> | null = null;
  /** The ROLLBACK of an early BEGIN that `settle` ended (never rejects). */
  private settling: Promise<void> = Promise.resolve();

  private async begin(): Promise<void> {
    const early = this.early;
    this.early = null;
    if (early) return early;
    await this.settling;
    await this.conn.run('BEGIN TRANSACTION');
  }

  private beginEarly(): void {
    const early = this.conn.run('BEGIN TRANSACTION').then(() => {});
    early.catch(() => {}); // seen by the next apply (or `settle`), not unhandled meanwhile
    this.early = early;
  }

  /**
   * Ends the early BEGIN, if one is open: call before anything else uses the writer connection between
   * applies (a statement in that transaction would fix its snapshot, or find a transaction it did not begin).
   */
  settle(): Promise<void> {
    const early = this.early;
    if (!early) return this.settling;
    this.early = null;
    this.settling = early.then(
      () => this.conn.run('ROLLBACK').then(() => {}, () => {}),
      () => {},
    );
    return this.settling;
  }

  private async stageFor(mirror: MirrorTable): Promise<Stage> {
    // Keyed by names and types: a rename or a widening with the same column count needs new staging SQL.
    const layout = `${mirror.name}:${mirror.columns.map((c) => `${c.name} ${c.duckType}`).join(',')}`;
    let stage = this.stages.get(layout);
    if (!stage) {
      stage = await Stage.create(this.conn, mirror, String(this.stageSeq++), this.copies.shared.copied);
      this.stages.set(layout, stage);
    }
    return stage;
  }

  /**
   * Whether the batch only loads a copied chunk of a table whose layout is known: such a batch may load on
   * the copy lane (a second connection) while the writer loads another one (src/warehouse/index.ts). It
   * moves no position, so it leaves `_ducktail.progress` alone.
   */
  laneable(batch: ChangeBatch): boolean {
    const c = batch.copyChunk;
    if (!c || batch.changes.length > 0 || batch.snapshot || batch.copyPlan || batch.copyHandoff || batch.catchUp) return false;
    if (batch.offsets?.length || batch.layouts?.length || batch.ackLsn !== undefined) return false;
    const schema = batch.tables.get(c.table);
    return schema !== undefined && this.catalog.cached(schema) !== undefined;
  }

  /** Loads a laneable batch's chunk on another connection, in its own transaction with its `done` mark. */
  async applyOnLane(conn: DuckDBConnection, lane: CopyChunks, batch: ChangeBatch): Promise<ApplyResult> {
    const started = performance.now();
    const chunk = batch.copyChunk!;
    const mirror = this.catalog.cached(batch.tables.get(chunk.table)!);
    if (!mirror) throw new AppError('BATCH_MISSING_TABLE', `the layout of ${chunk.table} changed before its chunk loaded`);
    await conn.run('BEGIN TRANSACTION');
    let loaded: { rows: number; unfit: number };
    try {
      loaded = await lane.apply(mirror, chunk);
      await conn.run('COMMIT');
    } catch (e) {
      await conn.run('ROLLBACK').catch(() => {});
      lane.reset();
      throw e;
    }
    this.timings.stageMs += performance.now() - started;
    await lane.load();
    return { applied: loaded.rows, skipped: 0, unfit: loaded.unfit, durationMs: performance.now() - started };
  }

  /** Loads a copied chunk (its table's layout must be in the batch). */
  private async applyChunk(batch: ChangeBatch): Promise<{ rows: number; unfit: number }> {
    const chunk = batch.copyChunk!;
    const schema = batch.tables.get(chunk.table);
    if (!schema) throw new AppError('BATCH_MISSING_TABLE', `batch has a copied chunk of ${chunk.table} but not its schema`);
    const t0 = performance.now();
    const n = await this.copies.apply(await this.catalog.ensure(schema), chunk);
    this.timings.stageMs += performance.now() - t0;
    return n;
  }

  /** Collapses the table's changes (final state per key, TOAST filled), stages them once and moves them. */
  private async applyTable(mirror: MirrorTable, changes: Change[]): Promise<number> {
    const keyOf = keyFunction(mirror.keyIndexes);
    const stage = await this.stageFor(mirror);
    let t0 = performance.now();
    const base = await stage.lookup(keysToLookUp(changes, keyOf), keyOf);
    this.timings.lookupMs += performance.now() - t0;
    t0 = performance.now();
    const { rows, truncate, lastLsn } = collapseChanges(mirror, changes, base, keyOf, this.copies.window(mirror.name));
    this.timings.collapseMs += performance.now() - t0;
    return stage.apply(rows, truncate, lastLsn, this.timings);
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
