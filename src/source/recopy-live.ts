/**
 * Copying a table again while the stream goes on for every other table (src/source/README.md, "Re-copy
 * while streaming"): the main stream drops the table's changes; the table is copied as of a temporary
 * slot's snapshot at L; that slot's stream then replays the table's changes from L (the catch-up) until it
 * has passed every transaction the main stream has begun, and hands the table back to the main stream at
 * that commit. Inline bus only (the copy travels as raw chunks, recorded in the warehouse).
 */
import type { ChangeBatch } from '../change/index.ts';
import { AppError, errorMessage } from '../errors.ts';
import { parseLsn } from './lsn.ts';
import { sleep } from './monitor.ts';
import { currentLayout } from './recopy.ts';
import { connectReplication, connectSql } from './slot.ts';
import { copySnapshot, type SnapshotProgress } from './snapshot.ts';
import { emptyStreamState, type StreamState, streamChanges } from './stream.ts';
import { UserTypes } from './user-types.ts';

/** While a table is copied, every change of it is dropped from the main stream. */
const ALL = 0xffff_ffff_ffff_ffffn;

/** Key under which the warehouse records re-copies in progress (`_ducktail.copy_chunks.slot`). */
export const recopySlotKey = (slot: string): string => `${slot}:recopy`;

/** What a re-copy while streaming needs. */
export interface LiveRecopyOptions {
  url: string;
  slot: string;
  publication: string;
  batchRows: number;
  batchMs: number;
  statusIntervalMs: number;
  connectTimeoutS: number;
  workers: number;
  chunkRows: number;
  serverVersion: number;
  /** The bus's publish (the main stream's batches go through publishMain). */
  publish(batch: ChangeBatch): Promise<void>;
  log(message: string): void;
  progress?(p: SnapshotProgress): void;
  /** Called with the tables being copied whenever that list changes (for /v1/status). */
  onChange?(tables: string[]): void;
}

/** Re-copies running beside the main stream, and the filter the main stream's batches pass through. */
export class LiveRecopy {
  private readonly running = new Map<string, Promise<void>>();
  /** Set while a table is handed back: the main stream's next batch waits for the catch-up's last one. */
  private gate: Promise<void> | null = null;
  private slots = 0;

  constructor(
    private readonly opts: LiveRecopyOptions,
    /** The main stream's skipBefore: changes of a table below its entry are dropped. */
    private readonly skip: Map<string, bigint>,
    /** The main stream's state (its highest begun commit LSN decides when a catch-up may hand over). */
    private readonly main: StreamState,
  ) {}

  /** Tables being copied now. */
  get tables(): string[] {
    return [...this.running.keys()];
  }

  /** Resolves when every re-copy running now has ended. */
  async settled(): Promise<void> {
    await Promise.all(this.running.values());
  }

  /**
   * The main stream's publish: a batch waits while a table is handed back, then goes without the changes
   * of tables being copied (below their hand-over point). Batches decoded before a copy began are filtered
   * here too, so none of the table's older changes reaches the warehouse after the copy's reset. (With no
   * copy running, the stream's own skipBefore check has dropped them already.)
   */
  async publishMain(batch: ChangeBatch): Promise<void> {
    while (this.gate) await this.gate;
    const drop = (c: ChangeBatch['changes'][number]) => c.lsn !== 0n && c.lsn < (this.skip.get(c.table) ?? 0n);
    const changes = this.running.size > 0 ? batch.changes.filter((c) => !drop(c)) : batch.changes;
    return this.opts.publish(changes.length === batch.changes.length ? batch : { ...batch, changes });
  }

  /** Starts copying `table` beside the stream (nothing when it is being copied already); retried until it ends. */
  start(table: string, signal: AbortSignal): void {
    if (this.running.has(table)) return;
    this.skip.set(table, ALL);
    const run = this.loop(table, signal).finally(() => {
      this.running.delete(table);
      this.opts.onChange?.(this.tables);
    });
    this.running.set(table, run);
    this.opts.onChange?.(this.tables);
  }

  private async loop(table: string, signal: AbortSignal): Promise<void> {
    let backoffMs = 1000;
    while (!signal.aborted) {
      try {
        await this.copyOnce(table, signal);
        return;
      } catch (e) {
        if (signal.aborted) return;
        this.opts.log(`re-copy of ${table} failed: ${errorMessage(e)}; starting it again in ${backoffMs} ms`);
        await sleep(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }

  private async copyOnce(table: string, signal: AbortSignal): Promise<void> {
    const o = this.opts;
    const sql = connectSql(o.url, { connectTimeoutS: o.connectTimeoutS, max: o.workers + 1 });
    const repl = connectReplication(o.url, o.connectTimeoutS);
    const handedOver = new AbortController();
    try {
      const types = new UserTypes(sql);
      const tmp = `${o.slot}_live_${process.pid}_${this.slots++}`.slice(0, 63);
      const [r] = (await repl.unsafe(`CREATE_REPLICATION_SLOT ${tmp} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT`)) as unknown as [
        { consistent_point: string; snapshot_name: string },
      ];
      const at = parseLsn(r.consistent_point);
      const schema = await currentLayout(sql, types, table);
      o.log(`copying ${table} again as of ${r.consistent_point} while the other tables stream`);
      await copySnapshot(sql, {
        slot: recopySlotKey(o.slot),
        snapshotName: r.snapshot_name,
        consistentPoint: at,
        tables: [schema],
        batchRows: o.batchRows,
        rawChunks: true,
        workers: o.workers,
        chunkRows: o.chunkRows,
        serverVersion: o.serverVersion,
        publish: o.publish,
        log: o.log,
        progress: o.progress,
        signal,
        markers: false,
      });
      if ((this.main.lastFinalLsn ?? 0n) < at) {
        // The main stream has begun no transaction the copy does not hold: it takes the table over from L.
        await this.handOver(table, at, { tables: new Map(), changes: [] });
        return;
      }
      // A transaction after everything the main stream has begun, so the catch-up reaches a hand-over point
      // even when nothing else is written.
      await sql`SELECT pg_logical_emit_message(true, 'ducktail_recopy', ${table})`;
      let done = false;
      const catchUp = async (b: ChangeBatch): Promise<void> => {
        if (done) return;
        const end = b.ackLsn;
        if (end !== undefined && end > (this.main.lastFinalLsn ?? 0n)) {
          // Every transaction the main stream has begun ends at or before `end`: the catch-up holds the
          // table's changes of all of them, the main stream applies those committed from `end` on.
          done = true;
          await this.handOver(table, end, { tables: b.tables, changes: b.changes.filter((c) => c.lsn < end) });
          handedOver.abort();
          return;
        }
        if (b.changes.length > 0) await o.publish({ tables: b.tables, changes: b.changes, catchUp: true });
      };
      await streamChanges(
        repl,
        {
          slot: tmp,
          publication: o.publication,
          tables: new Set([table]),
          batchRows: o.batchRows,
          batchMs: o.batchMs,
          batchAdaptive: true,
          statusIntervalMs: o.statusIntervalMs,
          receiveTimeoutMs: 60_000,
          confirmIntervalMs: 1000,
          confirmedLsn: at,
          startLsn: at,
          messages: o.serverVersion >= 140000,
          resolveColumns: async (relationId, columns) => types.resolve(await types.withAttnums(relationId, columns)),
        },
        catchUp,
        emptyStreamState(),
        AbortSignal.any([signal, handedOver.signal]),
      );
      if (!done && !signal.aborted) throw new AppError('RECOPY_CATCH_UP_ENDED', `the catch-up stream of ${table} ended before its hand-over`);
      if (done) o.log(`${table} copied again; the stream applies its changes again`);
    } finally {
      await repl.end({ timeout: 2 }).catch(() => {}); // the temporary slot goes with its session
      await sql.end({ timeout: 2 }).catch(() => {});
    }
  }

  /**
   * Publishes the catch-up's last changes with the hand-over point (recorded in the same warehouse
   * transaction) while the main stream's batches wait, then lets the main stream apply the table's
   * changes from `at` on. A failed publish leaves the table dropped from the main stream (the copy starts again).
   */
  private async handOver(table: string, at: bigint, last: Pick<ChangeBatch, 'tables' | 'changes'>): Promise<void> {
    let release = () => {};
    this.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.skip.set(table, at);
    try {
      await this.opts.publish({ ...last, catchUp: true, copyHandoff: { slot: recopySlotKey(this.opts.slot), table, at } });
    } catch (e) {
      this.skip.set(table, ALL);
      throw e;
    } finally {
      this.gate = null;
      release();
    }
  }
}
