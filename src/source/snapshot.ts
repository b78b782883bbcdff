import type { ReservedSql, Sql } from 'postgres';
import type { Change, ChangeBatch, CopyChunkPlan, TableSchema } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { parseCopyCsv, planChunks, readChunk, tableSize } from './chunks.ts';
import { parseLsn } from './lsn.ts';

/** Progress of the initial copy of one table (for the log and /v1/status). */
export interface SnapshotProgress {
  table: string;
  rows: number;
  /** PostgreSQL's estimate of the table's rows (pg_class.reltuples); null when unknown. */
  total: number | null;
  rowsPerSec: number;
  /** Seconds left at the present rate (0 once the table is done); null when unknown. */
  etaS: number | null;
  /** Chunks of the table done (including those a resumed copy found done) and planned. */
  chunksDone?: number;
  chunks?: number;
}

const LOG_EVERY_MS = 2_000;

/** Reports a table's copy progress to `progress` after each chunk and to the log every LOG_EVERY_MS. */
function progressReporter(name: string, total: number | null, start: number, opts: Pick<SnapshotOptions, 'log' | 'progress'>) {
  const started = performance.now();
  let loggedAt = started;
  return (rows: number, done: boolean, chunks?: { done: number; of: number }) => {
    const now = performance.now();
    const rowsPerSec = now > started ? Math.round(((rows - start) / (now - started)) * 1000) : 0;
    const left = total !== null ? Math.max(0, total - rows) : null;
    const etaS = done ? 0 : left !== null && rowsPerSec > 0 ? Math.round(left / rowsPerSec) : null;
    opts.progress?.({ table: name, rows, total, rowsPerSec, etaS, chunksDone: chunks?.done, chunks: chunks?.of });
    if (!done && now - loggedAt < LOG_EVERY_MS) return;
    loggedAt = now;
    const of = total !== null && !done ? ` of ~${total}` : '';
    const eta = !done && etaS !== null ? `, ETA ${etaS} s` : '';
    const ch = chunks ? `, chunk ${chunks.done}/${chunks.of}` : '';
    opts.log(`snapshot: ${name} ${rows}${of} rows, ${rowsPerSec} rows/s${eta}${ch}${done ? `, done in ${Math.round(now - started)} ms` : ''}`);
  };
}

/** What the initial copy needs. */
export interface SnapshotOptions {
  slot: string;
  /** The slot's exported snapshot; null when resuming (the remaining chunks are read in a fresh snapshot). */
  snapshotName: string | null;
  consistentPoint: bigint;
  tables: TableSchema[];
  batchRows: number;
  /** Connections reading chunks at the same time (default 1). */
  workers?: number;
  /** Rows per chunk, about (default 250000). */
  chunkRows?: number;
  /** server_version_num (ctid chunks need 14+). */
  serverVersion?: number;
  /**
   * true: chunks travel as raw COPY output (ChangeBatch.copyChunk) and are recorded done in the warehouse
   * (the inline bus); false: as 'R' changes (a bus that carries changes), and an interrupted copy starts over.
   */
  rawChunks?: boolean;
  /** A resumed copy: the recorded plan and which chunks are done; only the others are read. */
  resume?: (CopyChunkPlan & { done: boolean; rows: number })[];
  publish(batch: ChangeBatch): Promise<void>;
  log(message: string): void;
  /** Called with the copy's progress after each chunk. */
  progress?(p: SnapshotProgress): void;
  /** Stops the copy between chunks. */
  signal: AbortSignal;
  /** false for a re-copy of some tables while streaming: no 'copying'/'done' markers. Default true. */
  markers?: boolean;
}

/** One table's share of the copy. */
interface TableCopy {
  name: string;
  schema: TableSchema;
  chunks: CopyChunkPlan[];
  left: number;
  rows: number;
  seq: number;
  report: ReturnType<typeof progressReporter>;
}

/**
 * Copies every table as of the slot's exported snapshot (or, resuming, the chunks not yet done as of a
 * fresh snapshot: src/source/README.md), so that streaming from the consistent point continues exactly
 * where the copy ends. `workers` connections share the snapshot and read chunks with COPY TO STDOUT.
 */
export async function copySnapshot(sql: Sql, opts: SnapshotOptions): Promise<number> {
  const marker = { slot: opts.slot, consistentPoint: opts.consistentPoint };
  const commitTimeUs = BigInt(Date.now()) * 1000n;
  const markers = opts.markers !== false;
  const raw = opts.rawChunks === true;
  const workers = Math.max(1, opts.workers ?? 1);
  const leader = await sql.reserve();
  const readers: ReservedSql[] = [leader];
  try {
    await leader.unsafe('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let snapshotName = opts.snapshotName;
    let readAt = opts.consistentPoint;
    if (snapshotName) await leader.unsafe(`SET TRANSACTION SNAPSHOT '${snapshotName}'`);
    else {
      // A fresh snapshot; every transaction it sees committed before this WAL position.
      const [s] = (await leader.unsafe('SELECT pg_export_snapshot() AS name')) as unknown as [{ name: string }];
      const [w] = (await leader.unsafe('SELECT pg_current_wal_lsn()::text AS lsn')) as unknown as [{ lsn: string }];
      snapshotName = s.name;
      readAt = parseLsn(w.lsn);
    }
    const copies = new Map<string, TableCopy>();
    const plan: CopyChunkPlan[] = [];
    for (const t of opts.tables) {
      const name = `${t.schema}.${t.table}`;
      const size = await tableSize(leader, t);
      const recorded = opts.resume?.filter((c) => c.table === name);
      const chunks = recorded?.length
        ? recorded
        : await planChunks(leader, t, size, { chunkRows: opts.chunkRows ?? 250_000, version: opts.serverVersion ?? 0, workers });
      plan.push(...chunks);
      const todo = chunks.filter((c) => !('done' in c && c.done));
      const start = recorded?.reduce((n, c) => n + c.rows, 0) ?? 0;
      const report = progressReporter(name, size.rows, start, opts);
      copies.set(name, { name, schema: t, chunks: todo, left: todo.length, rows: start, seq: 0, report });
    }
    // The first batch (tables emptied, plan recorded) is applied while the workers read their first chunks;
    // every chunk is published after it.
    let first: Promise<void> = Promise.resolve();
    if (!opts.resume) {
      first = opts.publish({
        tables: new Map(opts.tables.map((t) => [`${t.schema}.${t.table}`, t])),
        changes: [...copies.keys()].map((name, seq) => ({ op: 'T', table: name, row: [], lsn: 0n, seq, commitTimeUs })),
        copyPoint: opts.consistentPoint,
        ...(markers ? { snapshot: { ...marker, status: 'copying' as const, rows: 0 } } : {}),
        ...(raw ? { copyPlan: { slot: opts.slot, chunks: plan } } : {}),
      });
      first.catch(() => {}); // awaited through the chain below
    } else {
      const left = [...copies.values()].reduce((n, c) => n + c.left, 0);
      opts.log(`snapshot: resuming the initial copy: ${plan.length - left} of ${plan.length} chunks done; the rest as of ${readAt}`);
    }
    for (let i = 1; i < workers; i++) {
      const r = await sql.reserve();
      readers.push(r);
      await r.unsafe('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await r.unsafe(`SET TRANSACTION SNAPSHOT '${snapshotName}'`);
    }
    const queue = [...copies.values()].flatMap((c) => c.chunks.map((chunk) => ({ copy: c, chunk })));
    for (const c of copies.values()) if (c.left === 0) c.report(c.rows, true, { done: c.chunks.length, of: c.chunks.length });
    let published = first;
    const work = async (reader: ReservedSql): Promise<void> => {
      let pending = Promise.resolve();
      for (let job = queue.shift(); job; job = queue.shift()) {
        if (opts.signal.aborted) throw new AppError('ABORTED', 'initial copy interrupted by shutdown; it resumes on the next start');
        const { copy, chunk } = job;
        const { csv, rows: counted } = await readChunk(reader, copy.schema, chunk.where);
        const batches = raw
          ? [{ tables: new Map([[copy.name, copy.schema]]), changes: [], copyPoint: opts.consistentPoint,
              copyChunk: { slot: opts.slot, table: copy.name, chunk: chunk.chunk, csv, rows: counted, readAt, commitTimeUs } }]
          : changeBatches(copy, csv, opts.batchRows, commitTimeUs, opts.consistentPoint);
        const rows = raw ? counted : batches.reduce((n, b) => n + b.changes.length, 0);
        // Changes go out one batch at a time, in order. A raw chunk waits only for the first batch: the
        // warehouse loads two chunks at a time (src/warehouse/index.ts, the copy lane). Either way this
        // worker reads its next chunk meanwhile.
        const after = raw ? first : published;
        const mine = after.then(async () => {
          for (const b of batches) await opts.publish(b);
          copy.rows += rows;
          copy.left--;
          const all = plan.filter((c) => c.table === copy.name).length;
          copy.report(copy.rows, copy.left === 0, { done: all - copy.left, of: all });
        });
        published = Promise.all([published, mine.catch(() => {})]).then(() => {});
        await pending; // at most one chunk of this worker waits for the warehouse
        pending = mine;
      }
      await pending;
    };
    await Promise.all(readers.map(work));
    await first;
    await published;
    const total = [...copies.values()].reduce((n, c) => n + c.rows, 0);
    if (markers) await opts.publish({ tables: new Map(), changes: [], snapshot: { ...marker, status: 'done', rows: total } });
    return total;
  } finally {
    // A connection the server closed under us (terminated, restarted) never answers again: postgres.js under
    // Bun leaves its next query pending forever (test/soak/pgjs-closed-socket.ts). Wait a bounded time, keep
    // such a connection out of the pool, and fail the attempt so the source retries with fresh connections.
    let lost = 0;
    for (const r of readers) {
      if (await answers(r.unsafe('ROLLBACK'), ROLLBACK_LIMIT_MS)) r.release();
      else lost++;
    }
    if (lost > 0 && !opts.signal.aborted) {
      throw new AppError('COPY_CONNECTION_LOST', `${lost} of the copy's connections to PostgreSQL stopped answering; retrying with new ones`);
    }
  }
}

const ROLLBACK_LIMIT_MS = 5_000;

/** Whether `query` succeeds within `ms`. */
async function answers(query: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([query.then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A chunk as 'R' changes in batches of `batchRows`. */
function changeBatches(copy: TableCopy, csv: Buffer, batchRows: number, commitTimeUs: bigint, copyPoint: bigint): ChangeBatch[] {
  const rows = parseCopyCsv(csv.toString('utf8'), copy.schema.columns.length);
  const out: ChangeBatch[] = [];
  for (let i = 0; i < rows.length; i += batchRows) {
    const changes: Change[] = rows.slice(i, i + batchRows).map((row) => ({
      op: 'R',
      table: copy.name,
      row,
      lsn: 0n,
      seq: copy.seq++,
      commitTimeUs,
    }));
    out.push({ tables: new Map([[copy.name, copy.schema]]), changes, copyPoint });
  }
  return out;
}
