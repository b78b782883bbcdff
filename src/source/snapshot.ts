import type { Sql } from 'postgres';
import type { Change, ChangeBatch, TableSchema } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { pgIdent } from './catalog.ts';

/** Progress of the initial copy of one table (for the log and /v1/status). */
export interface SnapshotProgress {
  table: string;
  rows: number;
  /** PostgreSQL's estimate of the table's rows (pg_class.reltuples); null when unknown. */
  total: number | null;
  rowsPerSec: number;
  /** Seconds left at the present rate (0 once the table is done); null when unknown. */
  etaS: number | null;
}

const LOG_EVERY_MS = 2_000;

/** Reports a table's copy progress to `progress` after each batch and to the log every LOG_EVERY_MS. */
function progressReporter(name: string, total: number | null, opts: Pick<SnapshotOptions, 'log' | 'progress'>) {
  const started = performance.now();
  let loggedAt = started;
  return (rows: number, done: boolean) => {
    const now = performance.now();
    const rowsPerSec = now > started ? Math.round((rows / (now - started)) * 1000) : 0;
    const left = total !== null ? Math.max(0, total - rows) : null;
    const etaS = done ? 0 : left !== null && rowsPerSec > 0 ? Math.round(left / rowsPerSec) : null;
    opts.progress?.({ table: name, rows, total, rowsPerSec, etaS });
    if (!done && now - loggedAt < LOG_EVERY_MS) return;
    loggedAt = now;
    const of = total !== null && !done ? ` of ~${total}` : '';
    const eta = !done && etaS !== null ? `, ETA ${etaS} s` : '';
    opts.log(`snapshot: ${name} ${rows}${of} rows, ${rowsPerSec} rows/s${eta}${done ? `, done in ${Math.round(now - started)} ms` : ''}`);
  };
}

/** What the initial copy needs. */
export interface SnapshotOptions {
  slot: string;
  snapshotName: string;
  consistentPoint: bigint;
  tables: TableSchema[];
  batchRows: number;
  publish(batch: ChangeBatch): Promise<void>;
  log(message: string): void;
  /** Called with the copy's progress after each batch. */
  progress?(p: SnapshotProgress): void;
  /** Stops the copy between batches; the next start copies again. */
  signal: AbortSignal;
  /** false for a re-copy of some tables while streaming: no 'copying'/'done' markers. Default true. */
  markers?: boolean;
}

/**
 * Copies every table as of the slot's exported snapshot, so that streaming from the consistent
 * point continues exactly where the copy ends. Rows travel as 'R' changes (lsn 0) through the bus;
 * the first batch truncates the mirrors and marks the copy 'copying', the last marks it 'done'.
 * An interrupted copy is not resumed: the caller drops the slot and starts again.
 */
export async function copySnapshot(sql: Sql, opts: SnapshotOptions): Promise<number> {
  const tables = new Map(opts.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const marker = { slot: opts.slot, consistentPoint: opts.consistentPoint };
  const commitTimeUs = BigInt(Date.now()) * 1000n;
  const markers = opts.markers !== false;
  await opts.publish({
    tables,
    changes: [...tables.keys()].map((name, seq) => ({ op: 'T', table: name, row: [], lsn: 0n, seq, commitTimeUs })),
    copyPoint: opts.consistentPoint,
    ...(markers ? { snapshot: { ...marker, status: 'copying' as const, rows: 0 } } : {}),
  });
  let total = 0;
  await sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
    await tx.unsafe(`SET TRANSACTION SNAPSHOT '${opts.snapshotName}'`);
    for (const [name, t] of tables) {
      const [est] = (await tx.unsafe('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass', [
        `${pgIdent(t.schema)}.${pgIdent(t.table)}`,
      ])) as unknown as [{ n: number } | undefined];
      const report = progressReporter(name, est && est.n >= 0 ? Math.round(est.n) : null, opts);
      const cols = t.columns.map((c) => `${pgIdent(c.name)}::text`).join(', ');
      const query = tx.unsafe(`SELECT ${cols} FROM ${pgIdent(t.schema)}.${pgIdent(t.table)}`).values();
      let copied = 0;
      for await (const rows of query.cursor(opts.batchRows)) {
        if (opts.signal.aborted) throw new AppError('ABORTED', 'initial copy interrupted by shutdown; it starts over on the next start');
        const changes: Change[] = rows.map((row, i) => ({
          op: 'R',
          table: name,
          row: row as (string | null)[],
          lsn: 0n,
          seq: copied + i,
          commitTimeUs,
        }));
        copied += rows.length;
        await opts.publish({ tables: new Map([[name, t]]), changes, copyPoint: opts.consistentPoint });
        report(copied, false);
      }
      total += copied;
      report(copied, true);
    }
  });
  if (markers) await opts.publish({ tables: new Map(), changes: [], snapshot: { ...marker, status: 'done', rows: total } });
  return total;
}
