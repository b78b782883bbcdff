import type { Sql, TransactionSql } from 'postgres';
import type { Change, ChangeBatch, TableSchema } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { pgIdent } from './catalog.ts';
import { CopyTextParser } from './copy-text.ts';

/** Progress of the initial copy (for the log and /v1/status). */
export interface SnapshotProgress {
  table: string;
  rows: number;
  /** PostgreSQL's estimate of the table's rows (pg_class.reltuples); null when unknown. */
  total: number | null;
  rowsPerSec: number;
  etaS: number | null;
}

/** What the initial copy needs. */
export interface SnapshotOptions {
  slot: string;
  snapshotName: string;
  consistentPoint: bigint;
  tables: TableSchema[];
  batchRows: number;
  /** Heap pages per COPY chunk (default PAGES_PER_CHUNK). */
  pagesPerChunk?: number;
  publish(batch: ChangeBatch): Promise<void>;
  log(message: string): void;
  /** Called with the copy's progress after each batch. */
  progress?(p: SnapshotProgress): void;
  /** Stops the copy between batches; the next start copies again. */
  signal: AbortSignal;
  /** false for a re-copy of some tables while streaming: no 'copying'/'done' markers. Default true. */
  markers?: boolean;
}

const LOG_EVERY_MS = 2_000;
/** Heap pages per COPY chunk (8 MiB with the default block size): the rows of one chunk are held in memory. */
const PAGES_PER_CHUNK = 1024;

/**
 * Runs one COPY ... TO STDOUT and returns its rows. The stream is read in flowing mode to its end:
 * postgres.js pauses its socket when a COPY stream's buffer fills and only a later read resumes
 * it, so a COPY read slowly inside a transaction can leave the socket paused and the COMMIT unanswered.
 */
function copyChunk(tx: TransactionSql, query: string, parser: CopyTextParser): Promise<(string | null)[][]> {
  return new Promise((resolve, reject) => {
    tx.unsafe(query)
      .readable()
      .then((stream) => {
        const rows: (string | null)[][] = [];
        stream.on('data', (chunk: Uint8Array) => {
          for (const row of parser.push(chunk)) rows.push(row);
        });
        stream.on('end', () => {
          try {
            parser.end();
            resolve(rows);
          } catch (e) {
            reject(e);
          }
        });
        stream.on('error', reject);
      }, reject);
  });
}

/**
 * Copies every table as of the slot's exported snapshot, so that streaming from the consistent
 * point continues exactly where the copy ends. Tables are read in chunks of heap pages with
 * COPY ... TO STDOUT (text format: the columns' text output, as pgoutput sends them) and travel
 * as 'R' changes (lsn 0) through the bus, one batch in flight while the next chunk is read. The first batch truncates the
 * mirrors and marks the copy 'copying', the last marks it 'done'. An interrupted copy is not
 * resumed: the caller drops the slot and starts again.
 */
export async function copySnapshot(sql: Sql, opts: SnapshotOptions): Promise<number> {
  const tables = new Map(opts.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const marker = { slot: opts.slot, consistentPoint: opts.consistentPoint };
  const commitTimeUs = BigInt(Date.now()) * 1000n;
  const markers = opts.markers !== false;
  await opts.publish({
    tables,
    changes: [...tables.keys()].map((name, seq) => ({ op: 'T', table: name, row: [], lsn: 0n, seq, commitTimeUs })),
    ...(markers ? { snapshot: { ...marker, status: 'copying' as const, rows: 0 } } : {}),
  });
  let total = 0;
  let inflight: Promise<void> = Promise.resolve();
  /** Publishes in order with one batch in flight, so reading overlaps the warehouse's apply. */
  const publish = async (batch: ChangeBatch) => {
    const previous = inflight;
    inflight = previous.then(() => opts.publish(batch));
    inflight.catch(() => {}); // surfaced by the next await of `inflight`
    await previous;
  };
  await sql.begin('ISOLATION LEVEL REPEATABLE READ READ ONLY', async (tx) => {
    await tx.unsafe(`SET TRANSACTION SNAPSHOT '${opts.snapshotName}'`);
    for (const [name, t] of tables) {
      const started = performance.now();
      const qualified = `${pgIdent(t.schema)}.${pgIdent(t.table)}`;
      const [est] = (await tx.unsafe(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass`, [
        qualified,
      ])) as unknown as [{ n: number } | undefined];
      const estimate = est && est.n >= 0 ? Math.round(est.n) : null;
      const cols = t.columns.map((c) => pgIdent(c.name)).join(', ');
      const [{ pages }] = (await tx.unsafe(
        `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int AS pages`,
        [qualified],
      )) as unknown as [{ pages: number }];
      const parser = new CopyTextParser(t.columns.length);
      let copied = 0;
      let batch: Change[] = [];
      let loggedAt = performance.now();
      const report = (final: boolean) => {
        const elapsedS = (performance.now() - started) / 1000;
        const rowsPerSec = elapsedS > 0 ? Math.round(copied / elapsedS) : 0;
        const left = estimate !== null ? Math.max(0, estimate - copied) : null;
        const etaS = final ? 0 : left !== null && rowsPerSec > 0 ? Math.round(left / rowsPerSec) : null;
        opts.progress?.({ table: name, rows: copied, total: estimate, rowsPerSec, etaS });
        if (final || performance.now() - loggedAt >= LOG_EVERY_MS) {
          loggedAt = performance.now();
          const of = estimate ? ` of ~${estimate}` : '';
          opts.log(`snapshot: ${name} ${copied}${of} rows, ${rowsPerSec} rows/s${etaS !== null && !final ? `, ETA ${etaS} s` : ''}`);
        }
      };
      const cut = async () => {
        const changes = batch;
        batch = [];
        await publish({ tables: new Map([[name, t]]), changes });
        report(false);
      };
      // Chunks of heap pages (TID range scans, PostgreSQL 14+); the last one is open-ended.
      const step = opts.pagesPerChunk ?? PAGES_PER_CHUNK;
      for (let from = 0; from === 0 || from < pages; from += step) {
        if (opts.signal.aborted) {
          throw new AppError('ABORTED', 'initial copy interrupted by shutdown; it starts over on the next start');
        }
        const last = from + step >= pages;
        const range = `ctid >= '(${from},0)'::tid${last ? '' : ` AND ctid < '(${from + step},0)'::tid`}`;
        const rows = await copyChunk(tx, `COPY (SELECT ${cols} FROM ${qualified} WHERE ${range}) TO STDOUT`, parser);
        for (const row of rows) {
          batch.push({ op: 'R', table: name, row, lsn: 0n, seq: copied++, commitTimeUs });
          if (batch.length >= opts.batchRows) await cut();
        }
      }
      if (batch.length > 0) await cut();
      await inflight;
      total += copied;
      report(true);
    }
  });
  await inflight;
  if (markers) await opts.publish({ tables: new Map(), changes: [], snapshot: { ...marker, status: 'done', rows: total } });
  return total;
}
