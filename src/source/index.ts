import type { ChangeBatch } from '../change/index.ts';
import { AppError, errorMessage } from '../errors.ts';
import { assertNoProblems, checkPrerequisites, describeTable, ensurePublication } from './catalog.ts';
import { copySnapshot } from './snapshot.ts';
import { assertUsableSlot, connectReplication, connectSql, createSlot, dropSlot, readSlot } from './slot.ts';
import { type StreamState, streamChanges } from './stream.ts';

export { checkPrerequisites, type Problem } from './catalog.ts';
export { connectSql, readSlot } from './slot.ts';

/** Source settings (from the [source] and [warehouse] config sections). */
export interface SourceOptions {
  url: string;
  slot: string;
  publication: string;
  /** "schema.table" names; empty = every table of the publication. */
  tables: string[];
  batchRows: number;
  batchMs: number;
  statusIntervalMs: number;
  connectTimeoutS: number;
}

/** What the source needs from the rest of the appliance. */
export interface SourceDeps {
  /** Resolves when the batch is durable downstream (the bus). */
  publish(batch: ChangeBatch): Promise<void>;
  /** Whether the warehouse holds a finished initial copy for the slot. */
  snapshotDone(slot: string): Promise<boolean>;
  log(message: string): void;
}

/** State shown by /readyz and /metrics. */
export interface SourceStatus extends StreamState {
  phase: 'starting' | 'snapshot' | 'streaming' | 'retrying' | 'stopped';
  error: string | null;
  restarts: number;
}

/** The PostgreSQL source: slot, initial copy, then the replication stream, restarted on failure. */
export interface Source {
  status: SourceStatus;
  /** Runs until the signal aborts; reconnects with backoff after errors. */
  run(signal: AbortSignal): Promise<void>;
}

/** Creates the source stage. */
export function createSource(opts: SourceOptions, deps: SourceDeps): Source {
  const status: SourceStatus = {
    phase: 'starting',
    error: null,
    restarts: 0,
    receivedLsn: 0n,
    flushedLsn: 0n,
    lastMessageAt: 0,
    lastCommitTimeUs: 0n,
    pendingChanges: 0,
    inflightBatches: 0,
  };

  async function runOnce(signal: AbortSignal): Promise<void> {
    const sql = connectSql(opts.url, { connectTimeoutS: opts.connectTimeoutS });
    const repl = connectReplication(opts.url, opts.connectTimeoutS);
    try {
      assertNoProblems(await checkPrerequisites(sql, { tables: opts.tables, publication: opts.publication }));
      const names = await ensurePublication(sql, opts.publication, opts.tables);
      const schemas = await Promise.all(
        names.map((n) => describeTable(sql, n.slice(0, n.indexOf('.')), n.slice(n.indexOf('.') + 1))),
      );
      const [{ db }] = (await sql`SELECT current_database() AS db`) as unknown as [{ db: string }];
      let slot = await readSlot(sql, opts.slot);
      if (slot) assertUsableSlot(opts.slot, slot, db);
      if (slot && !(await deps.snapshotDone(opts.slot))) {
        deps.log(`slot ${opts.slot} exists but the warehouse has no finished initial copy: dropping it and copying again`);
        await dropSlot(sql, opts.slot);
        slot = null;
      }
      let startLsn = 0n;
      let confirmedLsn: bigint;
      if (!slot) {
        status.phase = 'snapshot';
        const created = await createSlot(repl, opts.slot);
        deps.log(`created slot ${opts.slot} at ${created.consistentPoint}; copying ${names.length} tables`);
        await copySnapshot(sql, {
          slot: opts.slot,
          snapshotName: created.snapshotName,
          consistentPoint: created.consistentPoint,
          tables: schemas,
          batchRows: opts.batchRows,
          publish: deps.publish,
          log: deps.log,
          signal,
        });
        startLsn = created.consistentPoint;
        confirmedLsn = created.consistentPoint;
      } else {
        confirmedLsn = slot.confirmedFlushLsn;
      }
      if (signal.aborted) return;
      status.phase = 'streaming';
      status.error = null;
      await streamChanges(
        repl,
        {
          slot: opts.slot,
          publication: opts.publication,
          tables: new Set(names),
          batchRows: opts.batchRows,
          batchMs: opts.batchMs,
          statusIntervalMs: opts.statusIntervalMs,
          confirmedLsn,
          startLsn,
        },
        deps.publish,
        status,
        signal,
      );
    } finally {
      await repl.end({ timeout: 2 }).catch(() => {});
      await sql.end({ timeout: 2 }).catch(() => {});
    }
  }

  return {
    status,
    async run(signal: AbortSignal): Promise<void> {
      let backoffMs = 500;
      while (!signal.aborted) {
        try {
          await runOnce(signal);
          backoffMs = 500;
        } catch (e) {
          if (signal.aborted) break;
          status.phase = 'retrying';
          status.error = errorMessage(e);
          status.restarts++;
          const code = e instanceof AppError ? `${e.code}: ` : '';
          deps.log(`source: ${code}${status.error}; retrying in ${backoffMs} ms`);
          await sleep(backoffMs, signal);
          backoffMs = Math.min(backoffMs * 2, 30_000);
        }
      }
      status.phase = 'stopped';
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
