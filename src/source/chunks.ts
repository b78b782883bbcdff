/**
 * The initial copy's chunks: key (or ctid) ranges planned inside the copy's snapshot, read with
 * `COPY (SELECT ...) TO STDOUT` in PostgreSQL's CSV format (the same text output functions pgoutput uses).
 */
import type { ReservedSql, Sql } from 'postgres';
import type { CopyChunkPlan, TableSchema } from '../change/index.ts';
import { pgIdent } from './catalog.ts';

/** int2, int4, int8: a single-column key of these types is split by value ranges. */
const INTEGER_OIDS = new Set([20, 21, 23]);
/** DuckDB's row group is 122,880 rows: chunks are kept above it when split for the workers. */
const MIN_CHUNK_ROWS = 125_000;
/** PostgreSQL 14 added TID range scans: `ctid >= '(n,0)' AND ctid < '(m,0)'` reads only those pages. */
const TID_RANGE_SCAN = 140000;

/** COPY options shared by the reader and DuckDB's CSV reader (src/warehouse/copy.ts). */
export const COPY_FORMAT = `(FORMAT csv, DELIMITER E'\\t', NULL '\\N', QUOTE '"')`;

/** A table's size as the catalog has it: estimated rows (null when never analyzed) and pages on disk. */
export interface TableSize {
  rows: number | null;
  pages: number;
}

/** Estimated rows and pages of a table (cheap: pg_class and the file's size). */
export async function tableSize(sql: Sql | ReservedSql, t: TableSchema): Promise<TableSize> {
  const [r] = (await sql.unsafe(
    `SELECT reltuples::float8 AS n, (pg_relation_size(oid) / current_setting('block_size')::int)::float8 AS pages
       FROM pg_class WHERE oid = $1::regclass`,
    [qualified(t)],
  )) as unknown as [{ n: number; pages: number } | undefined];
  return { rows: r && r.n >= 0 ? Math.round(r.n) : null, pages: r ? Math.round(r.pages) : 0 };
}

/**
 * Splits a table into chunks of about `chunkRows` rows: by value ranges of a single integer key
 * (quantiles of a sample read in the snapshot), else by page (ctid) ranges on PostgreSQL 14+, else one chunk.
 * The first and last ranges are open, so every row of the table falls in exactly one chunk.
 */
export async function planChunks(
  sql: ReservedSql,
  t: TableSchema,
  size: TableSize,
  opts: { chunkRows: number; version: number; workers?: number },
): Promise<CopyChunkPlan[]> {
  const table = `${t.schema}.${t.table}`;
  const keys = t.columns.filter((c) => c.key);
  const whole = [{ table, chunk: 0, where: '' }];
  const estimate = size.rows ?? size.pages * 50;
  // Enough chunks for every worker to have a second one to read while the warehouse loads its first,
  // but none below DuckDB's row group (smaller ones go through its WAL: docs/PERFORMANCE.md).
  const perWorker = Math.min(2 * (opts.workers ?? 1), Math.floor(estimate / MIN_CHUNK_ROWS));
  const n = Math.max(1, perWorker, Math.min(Math.ceil(estimate / opts.chunkRows), 100_000));
  if (n === 1) return whole;
  if (keys.length === 1 && INTEGER_OIDS.has(keys[0]!.typeOid)) {
    // Bounds at the key's quantiles in a sample of pages (at least 100 rows per chunk, 10k in all), so a sparse or
    // skewed key still makes even chunks; the ranges are open at both ends, so the sample decides only balance.
    const k = pgIdent(keys[0]!.name);
    const pct = Math.min(100, (Math.max(n * 100, 10_000) / Math.max(1, estimate)) * 100);
    const fractions = Array.from({ length: n - 1 }, (_, i) => (i + 1) / n);
    const rows = (await sql.unsafe(
      `SELECT DISTINCT b::text AS b, b AS o FROM unnest((SELECT percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY ${k})
         FROM ${qualified(t)} TABLESAMPLE SYSTEM (${pct}))) b WHERE b IS NOT NULL ORDER BY o`,
      [fractions],
    )) as unknown as { b: string }[];
    return ranges(table, k, rows.map((r) => r.b));
  }
  if (opts.version >= TID_RANGE_SCAN && size.pages > 1) {
    const step = Math.ceil(size.pages / Math.min(n, size.pages));
    const bounds = [];
    for (let p = step; p < size.pages; p += step) bounds.push(`'(${p},0)'::tid`);
    return ranges(table, 'ctid', bounds);
  }
  return whole;
}

/** Chunks between consecutive bounds: `< b1`, `>= b1 AND < b2`, ..., `>= bn`. */
function ranges(table: string, column: string, bounds: string[]): CopyChunkPlan[] {
  if (bounds.length === 0) return [{ table, chunk: 0, where: '' }];
  const out: CopyChunkPlan[] = [];
  for (let i = 0; i <= bounds.length; i++) {
    const parts = [];
    if (i > 0) parts.push(`${column} >= ${bounds[i - 1]}`);
    if (i < bounds.length) parts.push(`${column} < ${bounds[i]}`);
    out.push({ table, chunk: i, where: parts.join(' AND ') });
  }
  return out;
}

/**
 * Reads one chunk's rows with COPY TO STDOUT on a connection inside the copy's snapshot: the COPY output and its
 * rows (PostgreSQL sends one CopyData message per row; patches/postgres+3.4.9.patch counts them and pushes each
 * socket read's rows as one buffer instead of one per row; without the count, the lines are counted).
 */
export async function readChunk(sql: ReservedSql, t: TableSchema, where: string): Promise<{ csv: Buffer; rows: number }> {
  const cols = t.columns.map((c) => pgIdent(c.name)).join(', ');
  const filter = where ? ` WHERE ${where}` : '';
  const stream = await sql.unsafe(`COPY (SELECT ${cols} FROM ${qualified(t)}${filter}) TO STDOUT ${COPY_FORMAT}`).readable();
  // postgres.js pauses its socket when a push finds the stream's buffer full and resumes it from the
  // stream's read(). When the COPY's last data and its end arrive in the same socket read, read() is never
  // called again after the end, the socket stays paused, and the connection's next query never gets an
  // answer (seen here as a chunk read that hangs; porsager/postgres#917). Calling read() once more after
  // the end resumes the socket.
  return new Promise<{ csv: Buffer; rows: number }>((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (part: Buffer) => parts.push(part));
    stream.once('end', () => {
      (stream as unknown as { _read(n: number): void })._read(0);
      const csv = Buffer.concat(parts);
      const counted = (stream as unknown as { copyRows?: number }).copyRows;
      resolve({ csv, rows: counted ?? countLines(csv) });
    });
    stream.once('error', reject);
  });
}

/** Lines of COPY CSV output: the rows, or more when a quoted value holds a newline. */
export function countLines(buf: Uint8Array): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Parses COPY_FORMAT output into rows of PostgreSQL text values (null for NULL): for buses that carry
 * changes (Kafka), which cannot take a raw chunk. Unquoted \N is NULL; quoted fields double their quotes.
 */
export function parseCopyCsv(text: string, columns: number): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let value: string | null;
    if (text.charCodeAt(i) === 34) {
      // '"': quoted, up to the closing quote not followed by another
      let s = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q === -1) throw new Error('unterminated quoted COPY field');
        s += text.slice(j, q);
        if (text.charCodeAt(q + 1) === 34) {
          s += '"';
          j = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      value = s;
    } else {
      let j = i;
      while (j < n && text.charCodeAt(j) !== 9 && text.charCodeAt(j) !== 10) j++;
      const s = text.slice(i, j);
      value = s === '\\N' ? null : s;
      i = j;
    }
    row.push(value);
    const sep = text.charCodeAt(i);
    i++;
    if (sep === 10 || i > n) {
      if (row.length !== columns) throw new Error(`COPY row has ${row.length} fields, expected ${columns}`);
      rows.push(row);
      row = [];
    }
  }
  return rows;
}

function qualified(t: TableSchema): string {
  return `${pgIdent(t.schema)}.${pgIdent(t.table)}`;
}
