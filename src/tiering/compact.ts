import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { liveFiles, type ManifestFile, nextId, retireFile } from './manifest.ts';
import { parkRetired } from './sweep.ts';
import { lit, PARQUET_READ, PARQUET_WRITE } from './sql.ts';
import { archivedSql, columnsOf, type ReadPath } from './views.ts';
import { addWarmFile, fingerprint, tableDir, TieringError, type TierSpec } from './warm.ts';

/** Thresholds that trigger compaction. */
export interface CompactRules {
  /** A month with this many live warm files of one table kind is merged into one. */
  minFiles: number;
  /** A file with this share of its rows superseded is rewritten without them. */
  deletedRatio: number;
  /** max_file_rows and max_file_size: only files below half of both count as small. */
  maxRows: number;
  maxBytes: number;
}

/**
 * Groups of live files of a table kind that the rules say to rewrite, per tier and month: the small
 * files of a month, and each file with `deletedRatio` of its rows superseded (inline deletes plus its
 * deletion vector). Cold files are rewritten into a warm file that the same pass moves to cold.
 */
export async function filesToCompact(conn: DuckDBConnection, s: TierSpec, rules: CompactRules): Promise<ManifestFile[][]> {
  const files = await liveFiles(conn, `table_name = ${lit(s.mirror.name)} AND kind = ${lit(s.kind)}`);
  const deleted = new Map<number, number>();
  const r = await conn.runAndReadAll('SELECT file_id, count(*) FROM _ducktail.tier_deletes GROUP BY file_id');
  for (const [id, n] of r.getRows()) deleted.set(Number(id), Number(n));
  const byMonth = new Map<string, ManifestFile[]>();
  for (const f of files) byMonth.set(`${f.tier}:${f.month}`, [...(byMonth.get(`${f.tier}:${f.month}`) ?? []), f]);
  const groups: ManifestFile[][] = [];
  for (const month of byMonth.values()) {
    // Small files of a month are merged; files already near max_file_rows (a split month) are not.
    const small = month.filter((f) => f.rowCount < rules.maxRows / 2 && f.byteSize < rules.maxBytes / 2);
    const merged = small.length >= rules.minFiles ? small : [];
    if (merged.length > 0) groups.push(merged);
    for (const f of month) {
      const superseded = (deleted.get(f.id) ?? 0) + (f.dvRows ?? 0);
      if (!merged.includes(f) && superseded >= rules.deletedRatio * f.rowCount) groups.push([f]);
    }
  }
  return groups;
}

/**
 * Rewrites files of one month into one, without their superseded rows, sorted by key, in one
 * transaction: write, verify count and checksum against the live rows of the old files, add the new
 * file, retire the old ones (deleted after the grace), drop their deletes and remap the locator.
 */
export async function compactFiles(
  conn: DuckDBConnection,
  s: TierSpec,
  files: ManifestFile[],
  opts: { pass: number; warmDir: string; readPath: ReadPath; refresh: () => Promise<void> },
): Promise<ManifestFile> {
  const ids = files.map((f) => f.id).join(', ');
  // The live rows of the files under the current layout (files written before a rename are mapped).
  const historyColumns = await columnsOf(conn, s.mirror.history);
  const live = archivedSql({ m: s.mirror, kind: s.kind, files, readPath: opts.readPath, text: [], historyColumns, guards: false });
  await conn.run('BEGIN TRANSACTION');
  let path = '';
  let file: ManifestFile;
  try {
    const id = await nextId(conn, 'tier_file_id');
    path = join(tableDir(opts.warmDir, s), `month=${files[0]!.month}`, `part-${String(opts.pass).padStart(6, '0')}-${id}.parquet`);
    mkdirSync(dirname(path), { recursive: true });
    await conn.run(`COPY (${live} ORDER BY ${s.orderBy}) TO ${lit(path)} ${PARQUET_WRITE}`).catch((e: unknown) => {
      throw new TieringError('TIER_WRITE_FAILED', `compacting into ${path} failed: ${(e as Error).message}; free space in warm_dir`, { cause: e });
    });
    const expected = await fingerprint(conn, live);
    const written = await fingerprint(conn, `SELECT * FROM read_parquet(${lit(path)}, ${PARQUET_READ})`);
    if (expected.rows !== written.rows || expected.checksum !== written.checksum) {
      throw new TieringError('TIER_VERIFY_FAILED', `compacted ${path} does not match its ${files.length} source files: nothing changed`);
    }
    // The new file's locator entries keep the version LSNs of the old ones, which then go.
    file = await addWarmFile(conn, s, { id, path, month: files[0]!.month, rows: written.rows, checksum: written.checksum, pass: opts.pass, versions: { files: files.map((f) => f.id) } });
    if (s.kind === 'current') await conn.run(`DELETE FROM _ducktail.tier_locator WHERE file_id IN (${ids})`);
    for (const f of files) await retireFile(conn, f, opts.pass);
    await conn.run(`DELETE FROM _ducktail.tier_deletes WHERE file_id IN (${ids})`);
    await opts.refresh();
    await conn.run('COMMIT');
  } catch (e) {
    await conn.run('ROLLBACK').catch(() => {});
    if (path) rmSync(path, { force: true });
    throw e;
  }
  for (const f of files) await parkRetired(conn, opts.warmDir, f.location, f.id).catch(() => {});
  return file;
}
