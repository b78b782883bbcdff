import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { BatchSink, ChangeBatch } from '../change/index.ts';
import { type ApplyResult, BatchApplier } from './apply.ts';
import { type ChunkState, CopyChunks } from './copy.ts';
import { automaticThreshold, CheckpointScheduler, type CheckpointStats } from './checkpoint.ts';
import { openWarehouseDb } from './duckdb.ts';
import { backfillSlice, copiedRange } from './lazy-copy.ts';
import { Progress } from './offsets.ts';
import type { StageTimings } from './stage.ts';
import { MirrorCatalog, type MirrorTable } from './tables.ts';

export type { Position, SnapshotState } from './offsets.ts';
export type { ChunkState } from './copy.ts';
export { Progress } from './offsets.ts';
export { MirrorCatalog, type MirrorTable } from './tables.ts';
export { mirrorKeySql } from './archived.ts';
export { timeTravelSql } from './time-travel.ts';
export { excludeHidden, HIDDEN_COLUMNS, hotCurrentSql, hotHistorySql, materialize, storeAgedCopies } from './lazy-copy.ts';
export { quoteIdent } from './pg-types.ts';

/** Warehouse settings (from the [warehouse] config section). */
export interface WarehouseOptions {
  path: string;
  memoryLimit: string;
  threads: number;
  /** Name of the input stream whose position is kept (the slot name for the inline bus). */
  stream: string;
  /** Warnings about the data, e.g. a column type stored as text (once per column). */
  warn?: (message: string) => void;
  /**
   * WAL size (MB) at which the warehouse checkpoints between applies (src/warehouse/checkpoint.ts);
   * DuckDB's automatic checkpoint inside a batch's COMMIT is pushed to 4 times this. Default 64.
   */
  checkpointWalMb?: number;
  /** Rows per slice of the copy's `R` row backfill (default BACKFILL_SLICE_ROWS; tests use small ones). */
  backfillSliceRows?: number;
}

/** A mirrored table as listed by the API. */
export interface TableInfo {
  name: string;
  rowCount: number;
  columns: { name: string; type: string }[];
}

/** Counters the API and metrics read. */
export interface WarehouseStats {
  batches: number;
  rowsApplied: number;
  rowsSkipped: number;
  lastApplyMs: number;
  /** Sum of all applies' durations (ms). */
  totalApplyMs: number;
  lastCommitAt: number | null;
  /**
   * Writes finished on the writer connection (applies and exclusive steps, failed ones too): grows after
   * every commit, before the write's promise settles. The API's result cache keys answers by it.
   */
  writes: number;
  /** Time per apply stage, summed (ms). */
  stageMs: StageTimings;
  /** Values stored as NULL for not fitting their DuckDB column exactly, since start (`_ducktail.unfit_values`). */
  unfitValues: number;
  /** Checkpoints the warehouse scheduled between applies, their time, and the WAL's size after the last apply. */
  checkpoint: CheckpointStats;
  /** The background backfill of the copy's `R` rows (lazy-copy.ts): rows stored, slices, time, whether it runs. */
  backfill: BackfillStats;
}

/** The backfill's counters (since start). */
export interface BackfillStats {
  running: boolean;
  rows: number;
  slices: number;
  /** Wall time from a run's start to its end, summed over runs (stream batches in between included). */
  ms: number;
  /** Time inside the slices' transactions. */
  sliceMs: number;
  /** Tables that may still have copied rows without a stored `R` row. */
  tables: number;
  /** Why the last run stopped short (retried after the next copy or restart), null once a run completes. */
  error: string | null;
}

/** Rows per backfill slice (one transaction on the writer; stream batches run between slices). */
export const BACKFILL_SLICE_ROWS = 25_000;
/** Quiet time after the last copied chunk before the backfill starts (a copy without an end marker: re-copies). */
const BACKFILL_IDLE_MS = 1000;

/** The embedded DuckDB warehouse: applies batches (the bus's sink) and lists its tables. */
export interface Warehouse extends BatchSink {
  instance: DuckDBInstance;
  progress: Progress;
  /** Folder of the apply path's staging files: must stay readable under the DuckDB lock-down. */
  stageDir: string;
  stats: WarehouseStats;
  /** A new connection on the same database (e.g. for queries); caller closes it. */
  connect(): Promise<DuckDBConnection>;
  tables(): Promise<TableInfo[]>;
  /** The initial copy's recorded chunks of a slot and which are done (empty when none were planned). */
  copyChunks(slot: string): Promise<ChunkState[]>;
  /** Runs `fn` on the writer connection between two applies (nothing else writes meanwhile). */
  exclusive<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T>;
  /** Resolves once no backfill runs or is due (every copied row's `R` row stored, or the backfill waits for a copy). */
  backfilled(): Promise<void>;
  /** Runs `fn` inside the apply transaction that changed a table's layout (schema change), on the writer. */
  onLayoutChange(fn: (conn: DuckDBConnection, m: MirrorTable) => Promise<void>): void;
  close(): Promise<void>;
}

/** Tables of PostgreSQL's `public` schema resolve unqualified, as in PostgreSQL (a per-connection setting). */
export const SEARCH_PATH = "SET search_path = 'public,main'";

/** A new connection with the warehouse's search path. */
export async function connectReader(instance: DuckDBInstance): Promise<DuckDBConnection> {
  const conn = await instance.connect();
  await conn.run(SEARCH_PATH);
  return conn;
}

/** The staging folder beside the DuckDB file (`<path>.stage`), emptied; a temporary one for `:memory:`. */
function openStageDir(path: string): string {
  if (path === ':memory:') return mkdtempSync(join(tmpdir(), 'ducktail-stage-'));
  const dir = `${resolve(path)}.stage`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Opens the DuckDB file and returns the warehouse. Applies are serialized. */
export async function createWarehouse(opts: WarehouseOptions): Promise<Warehouse> {
  const db = await openWarehouseDb(opts);
  const catalog = new MirrorCatalog(db.writer, opts.warn);
  await catalog.load();
  const progress = await Progress.open(db.writer, opts.stream);
  const stageDir = openStageDir(opts.path);
  const applier = new BatchApplier(db.writer, catalog, progress, stageDir);
  await applier.copies.load();
  const stats: WarehouseStats = {
    batches: 0,
    rowsApplied: 0,
    rowsSkipped: 0,
    lastApplyMs: 0,
    totalApplyMs: 0,
    lastCommitAt: null,
    writes: 0,
    stageMs: applier.timings,
    unfitValues: 0,
    checkpoint: { checkpoints: 0, checkpointMs: 0, checkpointsRefused: 0, walBytes: 0 },
    backfill: {
      running: false, rows: 0, slices: 0, ms: 0, sliceMs: 0, error: null,
      get tables() {
        return applier.copies.shared.copied.size; // live: a chunk adds its table, the backfill removes it
      },
    },
  };
  let unfitWarnedAt = 0;
  let chain: Promise<unknown> = Promise.resolve();
  /** Settles after the last apply that is not a copied chunk on a lane (see the copy lane below). */
  let barrier: Promise<unknown> = Promise.resolve();
  /** Applies called and not yet settled. */
  let queued = 0;
  const walBudget = (opts.checkpointWalMb ?? 64) * 1048576;
  await db.writer.run(`SET GLOBAL checkpoint_threshold = '${automaticThreshold(walBudget)}'`);
  const checkpoints = new CheckpointScheduler(
    { path: opts.path, walBudget, idleMs: 1000, idleMinimum: walBudget / 16 },
    stats.checkpoint,
    () => {
      const run = chain.then(() => applier.settle()).then(() => db.writer.run('CHECKPOINT'));
      chain = barrier = run.catch(() => {});
      return run.then(() => {});
    },
    () => queued,
  );

  // The copy lane: a second connection on which a copied chunk loads while the writer loads another one
  // (DuckDB appends of two transactions do not conflict, and each uses its own threads). Such chunks wait
  // only for what came before the last other batch (`barrier`) and for their lane; everything else waits
  // for all (`chain`), so a stream batch never overtakes a chunk and never runs beside one.
  const lanes: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
  /** Chunks queued or loading per lane: a chunk goes to the lane with fewer (the two alternate when even). */
  const laneLoad = [0, 0];
  let nextLane = 0;
  let copyLane: { conn: DuckDBConnection; copies: CopyChunks } | undefined;
  const laneFor = async (i: number) => {
    if (i === 0) return undefined;
    if (!copyLane) {
      const conn = await db.instance.connect();
      copyLane = { conn, copies: new CopyChunks(conn, stageDir, applier.copies.shared, '-1') };
    }
    return copyLane;
  };

  const exclusive = <T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> => {
    const run = chain.then(() => applier.settle()).then(() => fn(db.writer).finally(() => stats.writes++));
    chain = barrier = run.catch(() => {});
    return run;
  };

  // The backfill (lazy-copy.ts): once a copy is complete, the copied rows' `R` rows are stored slice by slice,
  // each slice one transaction on the writer queued behind what waits there, so stream batches run between
  // slices. It starts on the copy's end marker, a re-copy's hand-over, a quiet second after the last chunk, or
  // at open; it stops while chunks load (resumed by their end). Crash-safe: a slice is whole or absent, and
  // the next run continues with the positions still set.
  const copied = applier.copies.shared.copied;
  let closed = false;
  let chunksInFlight = 0;
  let backfillRun: Promise<void> | null = null;
  let backfillTimer: ReturnType<typeof setTimeout> | null = null;
  const sliceRows = BigInt(opts.backfillSliceRows ?? BACKFILL_SLICE_ROWS);
  /** The initial copy runs (its end marker starts the backfill; no quiet-time start before). */
  let initialCopying = false;
  const tableOf = async (conn: DuckDBConnection, name: string): Promise<MirrorTable | undefined> =>
    catalog.get(name) ?? (await new MirrorCatalog(conn).load()).find((t) => t.name === name);
  const backfillTable = async (name: string): Promise<void> => {
    for (;;) {
      if (closed || chunksInFlight > 0) return;
      // Checked on the writer, nothing else writing: a table without positions is forgotten here and only here.
      const range = await exclusive(async (conn) => {
        const m = await tableOf(conn, name);
        const r = m ? await copiedRange(conn, m) : null;
        if (!r) copied.delete(name);
        return r;
      });
      if (!range) return;
      let stored = 0;
      for (let from = range.min; from <= range.max; from += sliceRows) {
        if (closed || chunksInFlight > 0) return;
        const to = from + sliceRows;
        await exclusive(async (conn) => {
          const m = await tableOf(conn, name);
          if (!m) return;
          const t0 = performance.now();
          const n = await backfillSlice(conn, m, from, to);
          stored += n;
          stats.backfill.rows += n;
          stats.backfill.slices++;
          stats.backfill.sliceMs += performance.now() - t0;
        });
      }
      // Positions left that no slice stores (cannot happen: a guard against looping forever).
      if (stored === 0) throw new Error(`${name}: ${range.rows} copy positions left that no slice stored`);
    }
  };
  const startBackfill = (): void => {
    if (backfillTimer) clearTimeout(backfillTimer);
    backfillTimer = null;
    if (backfillRun || closed || copied.size === 0 || chunksInFlight > 0) return;
    const started = performance.now();
    stats.backfill.running = true;
    backfillRun = (async () => {
      for (const name of [...copied]) await backfillTable(name);
      if (!closed && chunksInFlight === 0) stats.backfill.error = null;
    })()
      .catch((e) => {
        stats.backfill.error = (e as Error).message;
        opts.warn?.(`storing the initial copy's R rows failed (retried after the next copy or restart): ${(e as Error).message}`);
      })
      .finally(() => {
        stats.backfill.ms += performance.now() - started;
        stats.backfill.running = false;
        backfillRun = null;
      });
  };
  const armBackfill = (): void => {
    if (backfillTimer) clearTimeout(backfillTimer);
    backfillTimer = closed || initialCopying ? null : setTimeout(startBackfill, BACKFILL_IDLE_MS);
  };
  for (const t of catalog.list()) {
    if (await copiedRange(db.writer, t)) copied.add(t.name);
  }
  // An initial copy that resumes starts the backfill with its end marker.
  initialCopying = (await progress.snapshotState(opts.stream)).status === 'copying';
  if (copied.size > 0) armBackfill();

  const apply = (batch: ChangeBatch): Promise<void> => {
    queued++;
    const chunk = batch.copyChunk !== undefined;
    if (chunk) chunksInFlight++;
    let run: Promise<void>;
    const body = async (lane: number | null) => {
      const on = lane === null ? undefined : await laneFor(lane);
      const r: ApplyResult = await (on ? applier.applyOnLane(on.conn, on.copies, batch) : applier.apply(batch)).finally(() => stats.writes++);
      stats.batches++;
      stats.rowsApplied += r.applied;
      stats.rowsSkipped += r.skipped;
      stats.lastApplyMs = r.durationMs;
      stats.totalApplyMs += r.durationMs;
      stats.lastCommitAt = Date.now();
      if (r.unfit > 0) {
        stats.unfitValues += r.unfit;
        if (Date.now() - unfitWarnedAt > 60_000) {
          unfitWarnedAt = Date.now();
          opts.warn?.(
            `${r.unfit} value(s) did not fit their DuckDB column exactly (NaN or ±Infinity in a numeric, an unconstrained ` +
              `numeric past DECIMAL(38,18), a timestamp past year 294247): stored as NULL, kept exactly in _ducktail.unfit_values (${stats.unfitValues} since start; docs/TYPES.md)`,
          );
        }
      }
    };
    if (!applier.laneable(batch)) {
      run = chain.then(() => body(null));
      chain = barrier = run.catch(() => {});
    } else {
      const lane = laneLoad[0] === laneLoad[1] ? nextLane : laneLoad[0]! < laneLoad[1]! ? 0 : 1;
      nextLane = 1 - lane;
      laneLoad[lane]!++;
      run = Promise.all([barrier, lanes[lane]]).then(() => body(lane));
      lanes[lane] = run.catch(() => {}).finally(() => laneLoad[lane]!--);
      chain = Promise.all([chain, lanes[lane]]);
    }
    // Before the caller sees the batch settle: the end of a copy has started its backfill (`backfilled()`).
    run = run.finally(() => {
          if (chunk) chunksInFlight--;
      if (batch.snapshot) initialCopying = batch.snapshot.status === 'copying';
      if (batch.snapshot?.status === 'done' || batch.copyHandoff) startBackfill();
      else if (chunk && chunksInFlight === 0) armBackfill();
    });
    void run
      .catch(() => {})
      .finally(() => {
        queued--;
        checkpoints.afterApply();
      });
    return run;
  };

  return {
    instance: db.instance,
    progress,
    stageDir,
    stats,
    apply,
    connect: () => connectReader(db.instance),
    copyChunks(slot: string): Promise<ChunkState[]> {
      const run = chain.then(() => applier.settle()).then(() => applier.copies.state(slot));
      chain = barrier = run.catch(() => {});
      return run;
    },
    exclusive,
    async backfilled() {
      while (backfillRun || backfillTimer) await (backfillRun ?? new Promise((r) => setTimeout(r, 20)));
    },
    onLayoutChange(fn) {
      catalog.onLayoutChange = fn;
    },
    async tables() {
      // Its own connection: the writer may be inside a transaction.
      const conn = await db.instance.connect();
      try {
        const out: TableInfo[] = [];
        for (const t of await new MirrorCatalog(conn).load()) {
          const r = await conn.runAndReadAll(`SELECT count(*) FROM ${t.currentView}`);
          out.push({
            name: t.name,
            rowCount: Number(r.getRows()[0]?.[0] ?? 0),
            columns: t.columns.map((c) => ({ name: c.name, type: c.duckType })),
          });
        }
        return out;
      } finally {
        conn.closeSync();
      }
    },
    async close() {
      closed = true;
      if (backfillTimer) clearTimeout(backfillTimer);
      backfillTimer = null;
      await backfillRun;
      checkpoints.close();
      await chain;
      await applier.settle();
      copyLane?.conn.closeSync();
      db.close();
      rmSync(stageDir, { recursive: true, force: true });
    },
  };
}
