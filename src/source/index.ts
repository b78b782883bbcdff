import type { Sql } from 'postgres';
import type { ChangeBatch, TableSchema } from '../change/index.ts';
import { AppError, errorMessage, RecopyNeeded } from '../errors.ts';
import { assertNoProblems, checkPrerequisites, describeTable, ensurePublication } from './catalog.ts';
import { emptySlotHealth, type HeartbeatState, runMonitor, type SlotHealth, sleep } from './monitor.ts';
import { copySnapshot, type SnapshotOptions, type SnapshotProgress } from './snapshot.ts';
import { assertUsableSlot, connectReplication, connectSql, createSlot, dropSlot, readSlot, resumePoint } from './slot.ts';
import { formatLsn } from './lsn.ts';
import { emptyStreamState, type StreamState, streamChanges } from './stream.ts';
import { UserTypes } from './user-types.ts';
import { checkCatalog, recopyTables } from './recopy.ts';
import { LiveRecopy, recopySlotKey } from './recopy-live.ts';

export { checkPrerequisites, type Problem } from './catalog.ts';
export { connectSql, readSlot } from './slot.ts';
export { HEARTBEAT_PREFIX, type HeartbeatState, type SlotHealth } from './monitor.ts';
export type { SnapshotProgress } from './snapshot.ts';

/** Source settings (from the [source] and [warehouse] config sections). */
export interface SourceOptions {
  url: string;
  slot: string;
  publication: string;
  /** "schema.table" names; empty = every table of the publication. */
  tables: string[];
  batchRows: number;
  batchMs: number;
  /** Cut batches as soon as the stream is idle (default true); batchRows and batchMs stay upper bounds. */
  batchAdaptive?: boolean;
  statusIntervalMs: number;
  connectTimeoutS: number;
  /** A newly durable position is confirmed at most this often (default 1000 ms; status_interval_ms still applies). */
  confirmIntervalMs?: number;
  /** Seconds between heartbeats (pg_logical_emit_message); 0 = none. */
  heartbeatIntervalS?: number;
  /** Seconds of silence after which the replication connection is taken as cut (0 = never). */
  receiveTimeoutS?: number;
  /** Connections reading the initial copy's chunks at the same time (default 2). */
  copyWorkers?: number;
  /** Rows per chunk of the initial copy, about (default 250000: above DuckDB's row group, see docs/PERFORMANCE.md). */
  copyChunkRows?: number;
}

/** The initial copy as the warehouse recorded it: its consistent point and chunks (resumable ones only). */
export interface RecordedCopy {
  status: 'none' | 'copying' | 'done';
  consistentPoint: bigint;
  chunks: { table: string; chunk: number; where: string; done: boolean; rows: number; readAt?: bigint }[];
}

/** What the source needs from the rest of the appliance. */
export interface SourceDeps {
  /** Resolves when the batch is durable downstream (the bus). */
  publish(batch: ChangeBatch): Promise<void>;
  /** Whether the warehouse holds a finished initial copy for the slot. */
  snapshotDone(slot: string): Promise<boolean>;
  /** "schema.table" names the warehouse mirrors (a published table missing there is copied). */
  mirroredTables?(): Promise<string[]>;
  /**
   * End LSN of the last transaction durable downstream (inline bus: committed in the warehouse), when
   * known. Streaming resumes there, so transactions applied but not yet confirmed to the slot (up to
   * about a second of work before a crash) are skipped by the server instead of replayed.
   */
  durableLsn?(): Promise<bigint>;
  /**
   * The initial copy's chunks as the warehouse recorded them, for a bus that takes raw COPY chunks (inline):
   * the copy then sends chunks and resumes after a crash at the next one. Absent: rows as changes, no resume.
   */
  recordedCopy?(slot: string): Promise<RecordedCopy>;
  /** Batches the bus takes before the earlier ones are durable (it keeps their order); unset = one at a time. */
  publishAhead?: number;
  /** The bus carries values as pgoutput's bytes (StreamOptions.wireRows): streamed changes keep them. */
  wireRows?: boolean;
  log(message: string): void;
}

/** State shown by /readyz and /metrics. */
export interface SourceStatus extends StreamState {
  phase: 'starting' | 'snapshot' | 'streaming' | 'retrying' | 'stopped';
  /** The last failure; cleared once a batch goes through again (not merely on reconnecting). */
  error: string | null;
  restarts: number;
  /** Failures since the last batch that went through: a stream that reconnects but fails again each time counts up. */
  failuresInARow: number;
  /** The slot as PostgreSQL reports it: lag, WAL reservation, invalidation with recovery steps. */
  slot: SlotHealth;
  heartbeat: HeartbeatState;
  /** The initial copy's progress (rows, rows/s, ETA) while it runs or after it ran; null when none ran. */
  snapshot: SnapshotProgress | null;
  /** Tables being copied again while the others stream (resnapshot, a table that joined the publication). */
  recopying: string[];
}

/** The PostgreSQL source: slot, initial copy, then the replication stream, restarted on failure. */
export interface Source {
  status: SourceStatus;
  /** Runs until the signal aborts; reconnects with backoff after errors. */
  run(signal: AbortSignal): Promise<void>;
  /**
   * Copies one table again (POST /v1/admin/resnapshot): the stream stops at a batch boundary, the table is
   * copied from a fresh snapshot, and streaming resumes for every table. Throws AppError NOT_STREAMING or
   * UNKNOWN_TABLE.
   */
  resnapshot(table: string): void;
}

/** Creates the source stage. */
export function createSource(opts: SourceOptions, deps: SourceDeps): Source {
  const status: SourceStatus = {
    phase: 'starting',
    error: null,
    restarts: 0,
    failuresInARow: 0,
    ...emptyStreamState(),
    slot: emptySlotHealth(),
    snapshot: null,
    recopying: [],
    heartbeat: { intervalS: opts.heartbeatIntervalS ?? 0, lastLsn: null, lastAt: null, error: null },
  };

  /** Tables to copy again before streaming resumes, and the position each copy was taken at. */
  const recopy = new Set<string>();
  const skipBefore = new Map<string, bigint>();
  const follow = opts.tables.length === 0;
  /** The bus's publish; a batch that goes through clears the failure state. */
  const publish = async (batch: ChangeBatch): Promise<void> => {
    await deps.publish(batch);
    if (status.failuresInARow > 0) {
      status.failuresInARow = 0;
      status.error = null;
    }
  };

  /**
   * Finishes an interrupted initial copy when the warehouse recorded its chunks and the slot still
   * stands at its consistent point: the remaining chunks are read in a fresh snapshot (src/source/README.md).
   * Returns the consistent point to stream from, or null when the copy must start over.
   */
  async function resumeCopy(
    sql: Sql,
    slotAt: bigint,
    names: string[],
    schemas: TableSchema[],
    copyOpts: Omit<SnapshotOptions, 'snapshotName' | 'consistentPoint' | 'tables'>,
  ): Promise<bigint | null> {
    if (!deps.recordedCopy) return null;
    const rec = await deps.recordedCopy(opts.slot);
    const tables = new Set(rec.chunks.map((c) => c.table));
    const same = tables.size === names.length && names.every((n) => tables.has(n));
    if (rec.status !== 'copying' || rec.consistentPoint !== slotAt || !same) return null;
    status.phase = 'snapshot';
    await copySnapshot(sql, { ...copyOpts, snapshotName: null, consistentPoint: slotAt, tables: schemas, resume: rec.chunks });
    return slotAt;
  }

  /** Tables of the running stream, and the switch that stops it for a re-copy on demand. */
  let streaming: { names: string[]; tables: Set<string>; stop: AbortController } | null = null;
  /** Re-copies beside the stream (inline bus: raw chunks recorded in the warehouse); null until the first connect. */
  let live: LiveRecopy | null = null;
  let runSignal: AbortSignal | null = null;
  /** Copies `table` beside the stream; false when that is not possible here (then the stream stops for it). */
  const recopyLive = (table: string, tables?: Set<string>, names?: string[]): boolean => {
    if (!live || !runSignal) return false;
    tables?.add(table);
    if (names && !names.includes(table)) names.push(table);
    live.start(table, runSignal);
    return true;
  };

  async function runOnce(signal: AbortSignal): Promise<void> {
    const workers = opts.copyWorkers ?? 2;
    const sql = connectSql(opts.url, { connectTimeoutS: opts.connectTimeoutS, max: workers + 1 });
    const repl = connectReplication(opts.url, opts.connectTimeoutS);
    try {
      assertNoProblems(await checkPrerequisites(sql, { tables: opts.tables, publication: opts.publication }));
      const names = await ensurePublication(sql, opts.publication, opts.tables);
      const types = new UserTypes(sql);
      const schemas = await Promise.all(
        names.map(async (n) => {
          const t = await describeTable(sql, n.slice(0, n.indexOf('.')), n.slice(n.indexOf('.') + 1));
          return { ...t, columns: await types.resolve(t.columns) };
        }),
      );
      const [{ db, version }] = (await sql`
        SELECT current_database() AS db, current_setting('server_version_num')::int AS version`) as unknown as [{ db: string; version: number }];
      let slot = await readSlot(sql, opts.slot);
      if (slot) assertUsableSlot(opts.slot, slot, db);
      const copyOpts = {
        slot: opts.slot,
        batchRows: opts.batchRows,
        workers,
        chunkRows: opts.copyChunkRows ?? 250_000,
        serverVersion: version,
        rawChunks: deps.recordedCopy !== undefined,
        publish,
        log: deps.log,
        progress: (p: SnapshotProgress) => {
          status.snapshot = p;
        },
        signal,
      };
      if (deps.recordedCopy && !live) {
        live = new LiveRecopy(
          {
            url: opts.url, slot: opts.slot, publication: opts.publication, batchRows: opts.batchRows, batchMs: opts.batchMs,
            statusIntervalMs: opts.statusIntervalMs, connectTimeoutS: opts.connectTimeoutS, workers,
            chunkRows: copyOpts.chunkRows, serverVersion: version, publish, log: deps.log, progress: copyOpts.progress,
            onChange: (tables) => {
              status.recopying = tables;
            },
          },
          skipBefore,
          status,
        );
      }
      let resumed: bigint | null = null;
      if (slot && !(await deps.snapshotDone(opts.slot))) {
        resumed = await resumeCopy(sql, slot.confirmedFlushLsn, names, schemas, copyOpts);
      }
      if (resumed === null && slot && !(await deps.snapshotDone(opts.slot))) {
        deps.log(`slot ${opts.slot} exists but the warehouse has no finished initial copy: dropping it and copying again`);
        await dropSlot(sql, opts.slot);
        slot = null;
      }
      const durable = slot && resumed === null && deps.durableLsn ? await deps.durableLsn() : null;
      const resumeAt = slot && durable !== null ? await resumePoint(sql, durable, slot.confirmedFlushLsn) : null;
      if (slot && durable !== null && resumeAt === null) {
        deps.log(
          `the source's WAL is behind what the warehouse applied (${formatLsn(durable)}): it was restored from a backup ` +
            `or replaced. The warehouse holds changes this server never had: dropping slot ${opts.slot} and copying every ` +
            'table again (history keeps the abandoned changes: README, "Source restored from a backup")',
        );
        await dropSlot(sql, opts.slot);
        slot = null;
      }
      let startLsn = 0n;
      let confirmedLsn: bigint;
      if (resumed !== null) {
        startLsn = resumed;
        confirmedLsn = resumed;
      } else if (!slot) {
        status.phase = 'snapshot';
        const created = await createSlot(repl, opts.slot);
        deps.log(`created slot ${opts.slot} at ${created.consistentPoint}; copying ${names.length} tables with ${workers} workers`);
        await copySnapshot(sql, {
          ...copyOpts,
          snapshotName: created.snapshotName,
          consistentPoint: created.consistentPoint,
          tables: schemas,
        });
        startLsn = created.consistentPoint;
        confirmedLsn = created.consistentPoint;
      } else {
        confirmedLsn = slot.confirmedFlushLsn;
        if (resumeAt !== null && resumeAt > confirmedLsn) {
          deps.log(`resuming at ${formatLsn(resumeAt)}, what the warehouse holds (the slot had confirmed ${formatLsn(confirmedLsn)})`);
          startLsn = resumeAt;
          confirmedLsn = resumeAt;
        }
        if (follow && deps.mirroredTables) {
          const mirrored = new Set(await deps.mirroredTables().catch(() => names)); // unknown: copy nothing
          // Joined the publication while ducktail was away: copied beside the stream (else before it).
          for (const n of names) if (!mirrored.has(n) && !recopyLive(n)) recopy.add(n);
        }
        if (live && deps.recordedCopy) {
          // Re-copies beside the stream that a stop interrupted start again; finished ones keep their hand-over
          // point, so a replay from before it does not apply the table's changes twice.
          const rec = await deps.recordedCopy(recopySlotKey(opts.slot));
          for (const c of rec.chunks) {
            if (c.chunk < 0 && c.readAt !== undefined && !skipBefore.has(c.table)) skipBefore.set(c.table, c.readAt);
          }
          for (const t of new Set(rec.chunks.filter((c) => c.chunk >= 0).map((c) => c.table))) if (names.includes(t)) recopyLive(t);
        }
        // Beside the stream where possible (e.g. after the warehouse refused a layout: RECOPY_NEEDED), else before it.
        for (const n of [...recopy]) if (names.includes(n) && recopyLive(n)) recopy.delete(n);
        if (recopy.size > 0) {
          status.phase = 'snapshot';
          const tables = [...recopy].filter((n) => names.includes(n));
          const at = await recopyTables(opts.url, sql, types, {
            slot: opts.slot, names: tables, batchRows: opts.batchRows, connectTimeoutS: opts.connectTimeoutS,
            rawChunks: copyOpts.rawChunks, workers, serverVersion: version,
            publish, log: deps.log, signal,
          });
          for (const n of tables) skipBefore.set(n, at);
          recopy.clear();
        }
      }
      if (signal.aborted) return;
      const sent = new Map<string, string>();
      status.phase = 'streaming';
      const stop = new AbortController();
      const tables = new Set(names);
      streaming = { names, tables, stop };
      await streamChanges(
        repl,
        {
          slot: opts.slot,
          publication: opts.publication,
          tables,
          batchRows: opts.batchRows,
          batchMs: opts.batchMs,
          batchAdaptive: opts.batchAdaptive ?? true,
          statusIntervalMs: opts.statusIntervalMs,
          receiveTimeoutMs: (opts.receiveTimeoutS ?? 60) * 1000,
          confirmIntervalMs: opts.confirmIntervalMs ?? 1000,
          publishAhead: deps.publishAhead,
          wireRows: deps.wireRows,
          confirmedLsn,
          startLsn,
          messages: version >= 140000,
          resolveColumns: async (relationId, columns) => types.resolve(await types.withAttnums(relationId, columns)),
          skipBefore,
          follow,
          onRecopy: (added) => added.every((t) => recopyLive(t, tables, names)),
          idleCheck: {
            everyMs: Math.max(1000, opts.statusIntervalMs),
            run: () => checkCatalog(sql, types, { publication: opts.publication, follow, known: new Set(names), sent }),
          },
        },
        live ? (b) => live!.publishMain(b) : publish,
        status,
        AbortSignal.any([signal, stop.signal]),
      );
    } finally {
      streaming = null;
      await repl.end({ timeout: 2 }).catch(() => {});
      await sql.end({ timeout: 2 }).catch(() => {});
    }
  }

  return {
    status,
    resnapshot(table: string): void {
      const s = streaming;
      if (!s || status.phase !== 'streaming') {
        throw new AppError('NOT_STREAMING', `the source is ${status.phase}, not streaming: ask again once /v1/status says streaming`);
      }
      if (!s.names.includes(table)) {
        throw new AppError('UNKNOWN_TABLE', `${table} is not replicated; replicated tables: ${s.names.join(', ')}`);
      }
      if (recopyLive(table)) {
        deps.log(`source: ${table} is being copied again beside the stream (resnapshot requested)`);
        return;
      }
      recopy.add(table);
      deps.log(`source: ${table} will be copied again (resnapshot requested)`);
      s.stop.abort(); // the stream publishes what it holds and returns; the next round copies the table
    },
    async run(signal: AbortSignal): Promise<void> {
      const monitorStop = new AbortController();
      const receiveTimeoutS = opts.receiveTimeoutS ?? 60;
      const monitor = runMonitor(
        () => connectSql(opts.url, { max: 1, connectTimeoutS: opts.connectTimeoutS }),
        {
          slot: opts.slot,
          heartbeatS: opts.heartbeatIntervalS ?? 0,
          statusIntervalMs: opts.statusIntervalMs,
          timeoutMs: receiveTimeoutS > 0 ? Math.max(1000, (receiveTimeoutS * 1000) / 2) : 30_000,
          log: deps.log,
        },
        status.slot,
        status.heartbeat,
        monitorStop.signal,
      );
      let backoffMs = 500;
      runSignal = signal;
      while (!signal.aborted) {
        try {
          await runOnce(signal);
          backoffMs = 500;
        } catch (e) {
          if (signal.aborted) break;
          if (e instanceof RecopyNeeded) {
            // Not a failure: reconnect at once, copy the tables, resume (see recopy.ts).
            for (const t of e.tables) recopy.add(t);
            deps.log(`source: ${e.message}`);
            continue;
          }
          status.phase = 'retrying';
          status.error = errorMessage(e);
          status.restarts++;
          status.failuresInARow++;
          const code = e instanceof AppError ? `${e.code}: ` : '';
          deps.log(`source: ${code}${status.error}; retrying in ${backoffMs} ms`);
          await sleep(backoffMs, signal);
          backoffMs = Math.min(backoffMs * 2, 30_000);
        }
      }
      await live?.settled(); // re-copies beside the stream end with the signal and close their connections
      status.phase = 'stopped';
      // The monitor closes its connection on abort (2 s limit): a query stuck on a frozen server
      // is cut instead of holding the stop.
      monitorStop.abort();
      await monitor;
    },
  };
}
