import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../errors.ts';
import { excludeHidden, materialize, type MirrorTable, mirrorKeySql, quoteIdent } from '../warehouse/index.ts';
import { crashPoint } from './fault.ts';
import { fileLayout } from './layout.ts';
import { type FileKind, insertFile, type ManifestFile, nextId, nextRowId } from './manifest.ts';
import { readList, textColumns, writeList } from './parquet-types.ts';
import { lit, nextMonth, PARQUET_READ, PARQUET_WRITE } from './sql.ts';
import { bytesPerRow, type FileLimits, keyRanges } from './split.ts';

/** Target size of one Parquet file (max_file_size: files toward 128-512 MiB). */
export const DEFAULT_FILE_BYTES = 256 * 2 ** 20;
/** Months with fewer rows are written as one file without measuring their bytes per row. */
const SMALL_MONTH_ROWS = 1_000;

/** A tiering failure with a stable code (TIER_WRITE_FAILED, TIER_VERIFY_FAILED, COLD_UNREACHABLE, ...). */
export class TieringError extends AppError {}

/** How one table kind is tiered: its hot table, time column and sort order. */
export interface TierSpec {
  mirror: MirrorTable;
  kind: FileKind;
  hot: string;
  /** Quoted time column. */
  time: string;
  orderBy: string;
}

/** The tiering spec of a table's current state (by its time column) or of its history (by _commit_ts). */
export function tierSpec(m: MirrorTable, kind: FileKind, timeColumn: string): TierSpec {
  if (kind === 'history') return { mirror: m, kind, hot: m.history, time: '_commit_ts', orderBy: '_lsn, _seq' };
  const keys = m.keyIndexes.map((i) => quoteIdent(m.columns[i]!.name)).join(', ');
  return { mirror: m, kind, hot: m.current, time: quoteIdent(timeColumn), orderBy: keys };
}

/** Folder of a table kind's files under a tier root: `<root>/<kind>/<schema.table>`. */
export function tableDir(root: string, spec: { kind: FileKind; mirror: MirrorTable }): string {
  return join(root, spec.kind, spec.mirror.name);
}

/** Where a month's sample is written to measure bytes per row: outside the Hive layout, swept if left. */
function samplePath(warmDir: string, s: TierSpec, pass: number): string {
  mkdirSync(join(warmDir, '_tmp'), { recursive: true });
  return join(warmDir, '_tmp', `sample-${s.kind}-${s.mirror.name}-${pass}.parquet`);
}

/** Months (YYYY-MM) that hold hot rows older than `cutoff`. */
export async function monthsToArchive(conn: DuckDBConnection, s: TierSpec, cutoff: string): Promise<string[]> {
  const r = await conn.runAndReadAll(
    `SELECT DISTINCT strftime(${s.time}::TIMESTAMPTZ, '%Y-%m') m FROM ${s.hot} WHERE ${s.time}::TIMESTAMPTZ < ${lit(cutoff)}::TIMESTAMPTZ ORDER BY m`,
  );
  return r.getRows().map((x) => x[0] as string);
}

/** Count and checksum (sum of row hashes) of a relation. */
export async function fingerprint(conn: DuckDBConnection, relation: string): Promise<{ rows: number; checksum: string }> {
  const r = await conn.runAndReadAll(`SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM (${relation}) t`);
  const row = r.getRows()[0]!;
  return { rows: Number(row[0]), checksum: row[1] as string };
}

/** Statistics of a written file, for the manifest and file skipping. */
async function fileStats(conn: DuckDBConnection, s: TierSpec, path: string) {
  // Min/max in the key's own order (numbers as numbers), rendered as text; a composite key as a row.
  const cols = s.kind === 'current' ? s.mirror.keyIndexes.map((i) => `p.${quoteIdent(s.mirror.columns[i]!.name)}`) : ['_lsn', '_seq'];
  const key = cols.length === 1 ? cols[0]! : `row(${cols.join(', ')})`;
  const lsn = s.kind === 'history' ? 'min(_lsn)::VARCHAR, max(_lsn)::VARCHAR' : 'NULL, NULL';
  const r = await conn.runAndReadAll(
    `SELECT min(${s.time})::TIMESTAMPTZ::VARCHAR, max(${s.time})::TIMESTAMPTZ::VARCHAR, min(${key})::VARCHAR, max(${key})::VARCHAR, ${lsn} ` +
      `FROM read_parquet(${lit(path)}, ${PARQUET_READ}) p`,
  );
  const [minTime, maxTime, minKey, maxKey, minLsn, maxLsn] = r.getRows()[0] as (string | null)[];
  return { minTime, maxTime, minKey, maxKey, minLsn, maxLsn } as Record<string, string | null>;
}

/** Adds a new warm file to the manifest with its statistics, and its keys to the locator (caller's transaction). */
export async function addWarmFile(
  conn: DuckDBConnection,
  s: TierSpec,
  f: { id: number; path: string; month: string; rows: number; checksum: string; pass: number; versions: VersionSource },
): Promise<ManifestFile> {
  const st = await fileStats(conn, s, f.path);
  const file: ManifestFile = {
    id: f.id,
    tableName: s.mirror.name,
    kind: s.kind,
    tier: 'warm',
    location: f.path,
    month: f.month,
    rowCount: f.rows,
    byteSize: statSync(f.path).size,
    checksum: f.checksum,
    firstRowId: await nextRowId(conn, s.mirror.name, s.kind),
    minTime: st.minTime!,
    maxTime: st.maxTime!,
    minKey: st.minKey!,
    maxKey: st.maxKey!,
    minLsn: st.minLsn!,
    maxLsn: st.maxLsn!,
    addedPass: f.pass,
    layout: await fileLayout(conn, s.mirror, f.path),
  };
  await insertFile(conn, file);
  if (s.kind === 'current') await locate(conn, s, f.id, f.path, f.versions);
  return file;
}

/**
 * Where the version LSN of a new file's rows comes from (`tier_locator.lsn`): the table's history
 * (the newest `_lsn` of each key, hot or archived: a row written from the hot table), or the locator
 * entries of the files it replaces (compaction). 0 when unknown (rows of the initial copy).
 */
export type VersionSource = { history: true } | { files: number[] };

/** Adds the key -> (file, row, version LSN) locator entries of a new current-state file. */
async function locate(conn: DuckDBConnection, s: TierSpec, id: number, path: string, from: VersionSource): Promise<void> {
  const m = s.mirror;
  const keys = m.keyIndexes.map((i) => quoteIdent(m.columns[i]!.name));
  const rows = `(SELECT p.file_row_number AS _tier_row, ${keys.map((k) => `p.${k}`).join(', ')} FROM read_parquet(${lit(path)}, ${PARQUET_READ}, file_row_number = true) p)`;
  let versions: string;
  let on: string;
  if ('files' in from) {
    versions = `(SELECT key, lsn FROM _ducktail.tier_locator WHERE table_name = ${lit(m.name)} AND file_id IN (${from.files.join(', ') || 'NULL'}))`;
    on = `v.key = ${mirrorKeySql(m, 'f')}`;
  } else {
    const match = keys.map((k) => `h.${k} = f.${k}`).join(' AND ');
    versions = `(SELECT ${keys.map((k) => `h.${k}`).join(', ')}, max(h._lsn) AS lsn FROM ${m.historyView} h SEMI JOIN ${rows} f ON ${match} GROUP BY ALL)`;
    on = keys.map((k) => `v.${k} = f.${k}`).join(' AND ');
  }
  await conn.run(
    `INSERT INTO _ducktail.tier_locator (table_name, key, file_id, row, lsn) SELECT ${lit(m.name)}, ${mirrorKeySql(m, 'f')}, ${id}, f._tier_row, coalesce(v.lsn, 0) ` +
      `FROM ${rows} f LEFT JOIN ${versions} v ON ${on}`,
  );
}

/**
 * Moves the hot rows of one month older than `cutoff` into warm Parquet files (one, or several split
 * by key past `maxRows`), in one transaction: write (zstd, sorted by key, row groups of at most 1M
 * rows), verify count and checksum of each file against its hot rows, add the files (and their key
 * locator) to the manifest, delete the hot rows, rewrite the view. A crash before COMMIT leaves the
 * hot rows and orphan files the sweep removes; after COMMIT, the files are the only copy.
 * Runs on the writer between applies; `refresh` rewrites the table's views.
 */
export async function moveMonthToWarm(
  conn: DuckDBConnection,
  s: TierSpec,
  opts: { month: string; cutoff: string; warmDir: string; pass: number; limits?: Partial<FileLimits>; refresh: () => Promise<void> },
): Promise<ManifestFile[]> {
  const dir = join(tableDir(opts.warmDir, s), `month=${opts.month}`);
  const where =
    `${s.time}::TIMESTAMPTZ >= ${lit(`${opts.month}-01`)}::TIMESTAMPTZ AND ${s.time}::TIMESTAMPTZ < ${lit(nextMonth(opts.month))}::TIMESTAMPTZ ` +
    `AND ${s.time}::TIMESTAMPTZ < ${lit(opts.cutoff)}::TIMESTAMPTZ`;
  const text = await textColumns(conn, s.hot);
  // The current table's hidden copy columns stay out of the files (src/warehouse/lazy-copy.ts).
  const hidden = s.kind === 'current' ? excludeHidden(s.mirror) : '';
  const list = writeList(text, hidden);
  await conn.run('BEGIN TRANSACTION');
  const paths: string[] = [];
  try {
    const total = Number((await conn.runAndReadAll(`SELECT count(*) FROM ${s.hot} WHERE ${where}`)).getRows()[0]![0]);
    const files: ManifestFile[] = [];
    const limits = { maxRows: opts.limits?.maxRows ?? 8_000_000, maxBytes: opts.limits?.maxBytes ?? DEFAULT_FILE_BYTES };
    const perRow = total > SMALL_MONTH_ROWS ? await bytesPerRow(conn, s, where, total, samplePath(opts.warmDir, s, opts.pass), list) : 0;
    for (const range of await keyRanges(conn, s, where, total, perRow, limits)) {
      const part = `${where} AND ${range}`;
      const rows = `SELECT *${hidden} FROM ${s.hot} WHERE ${part}`;
      const expected = await fingerprint(conn, rows);
      if (expected.rows === 0) continue;
      const id = await nextId(conn, 'tier_file_id');
      const path = join(dir, `part-${String(opts.pass).padStart(6, '0')}-${id}.parquet`);
      paths.push(path);
      try {
        mkdirSync(dir, { recursive: true });
        await conn.run(
          `COPY (SELECT ${list} FROM ${s.hot} WHERE ${part} ORDER BY ${s.orderBy}) TO ${lit(path)} ` +
            PARQUET_WRITE,
        );
      } catch (e) {
        throw new TieringError(
          'TIER_WRITE_FAILED',
          `writing ${path} failed: ${(e as Error).message}. Nothing was moved; free space in warm_dir ` +
            `(or point tiering.warm_dir at a larger disk) and run the archive again.`,
          { cause: e },
        );
      }
      crashPoint('warm-written');
      const readBack = `SELECT ${readList(text, 'p')} FROM read_parquet(${lit(path)}, ${PARQUET_READ}) p`;
      const written = await fingerprint(conn, readBack);
      if (expected.rows !== written.rows || expected.checksum !== written.checksum) {
        throw new TieringError(
          'TIER_VERIFY_FAILED',
          `${path} holds ${written.rows} rows (checksum ${written.checksum}) but ${s.hot} has ${expected.rows} ` +
            `(checksum ${expected.checksum}) for ${opts.month}: nothing was moved`,
        );
      }
      // The manifest keeps the file's own checksum (later copies are verified against it): text-stored columns as text.
      const checksum = text.length === 0 ? written.checksum : (await fingerprint(conn, `SELECT * FROM read_parquet(${lit(path)}, ${PARQUET_READ})`)).checksum;
      files.push(await addWarmFile(conn, s, { id, path, month: opts.month, rows: written.rows, checksum, pass: opts.pass, versions: { history: true } }));
    }
    if (files.reduce((n, f) => n + f.rowCount, 0) !== total) {
      throw new TieringError('TIER_VERIFY_FAILED', `the files of ${opts.month} hold ${files.reduce((n, f) => n + f.rowCount, 0)} rows, ${s.hot} has ${total}: nothing was moved`);
    }
    // Copied rows whose `R` rows are derived from them get those stored before they leave the hot table.
    if (s.kind === 'current') await materialize(conn, s.mirror, { where });
    await conn.run(`DELETE FROM ${s.hot} WHERE ${where}`);
    await opts.refresh();
    crashPoint('warm-before-commit');
    await conn.run('COMMIT');
    return files;
  } catch (e) {
    await conn.run('ROLLBACK').catch(() => {});
    for (const p of paths) rmSync(p, { force: true });
    throw e;
  }
}
