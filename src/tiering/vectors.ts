import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crashPoint } from './fault.ts';
import { liveFiles, type ManifestFile } from './manifest.ts';
import { lit, PARQUET_READ } from './sql.ts';
import { TieringError } from './warm.ts';

/** A file with at least this many inline deletes gets (or extends) its deletion vector. */
export const VECTOR_MIN_ROWS = 64;

/** Where a data file's deletion vector lives: outside the Hive layout, so engines never read it as data. */
export function vectorPath(warmDir: string, f: ManifestFile, pass: number): string {
  return join(warmDir, '_deletes', f.kind, f.tableName, `dv-${f.id}-${String(pass).padStart(6, '0')}.parquet`);
}

/** Live current-state files of a table with at least `min` inline deletes. */
async function filesToFlush(conn: DuckDBConnection, table: string, min: number): Promise<ManifestFile[]> {
  const r = await conn.runAndReadAll(
    `SELECT file_id FROM _ducktail.tier_deletes d JOIN _ducktail.tier_files f ON f.id = d.file_id ` +
      `WHERE f.table_name = ${lit(table)} AND f.retired_pass IS NULL GROUP BY file_id HAVING count(*) >= ${min}`,
  );
  const ids = new Set(r.getRows().map((x) => Number(x[0])));
  if (ids.size === 0) return [];
  return (await liveFiles(conn, `table_name = ${lit(table)} AND kind = 'current'`)).filter((f) => ids.has(f.id));
}

/**
 * Moves the inline deletes of files with many of them into one deletion vector per data file (as
 * Iceberg v3 and DuckLake do): a Parquet file of (row, lsn) sorted by row, holding the file's previous
 * vector's positions too. In one transaction per table: write each vector, verify its count and
 * checksum against the positions it replaces, point the manifest at it, drop the inline rows, queue the
 * previous vector for deletion, rewrite the view. A crash before COMMIT leaves orphan vectors the sweep
 * removes. Runs on the writer between applies. Returns how many files got a new vector.
 */
export async function flushDeletes(
  conn: DuckDBConnection,
  table: string,
  opts: { warmDir: string; pass: number; minRows?: number; refresh: () => Promise<void> },
): Promise<number> {
  const files = await filesToFlush(conn, table, opts.minRows ?? VECTOR_MIN_ROWS);
  if (files.length === 0) return 0;
  const written: string[] = [];
  await conn.run('BEGIN TRANSACTION');
  try {
    for (const f of files) {
      const path = vectorPath(opts.warmDir, f, opts.pass);
      const old = f.deletionVector ? ` UNION ALL SELECT row, lsn FROM read_parquet(${lit(f.deletionVector)}, ${PARQUET_READ})` : '';
      const positions = `SELECT row, lsn FROM _ducktail.tier_deletes WHERE file_id = ${f.id}${old}`;
      const check = async (rel: string) => (await conn.runAndReadAll(`SELECT count(*), coalesce(sum(hash(row, lsn)), 0)::VARCHAR FROM (${rel})`)).getRows()[0]!.map(String);
      const expected = await check(positions);
      mkdirSync(join(path, '..'), { recursive: true });
      written.push(path);
      await conn.run(`COPY (${positions} ORDER BY row) TO ${lit(path)} (FORMAT parquet, COMPRESSION zstd)`).catch((e: unknown) => {
        throw new TieringError('TIER_WRITE_FAILED', `writing the deletion vector ${path} failed: ${(e as Error).message}; free space in warm_dir`, { cause: e });
      });
      const got = await check(`SELECT row, lsn FROM read_parquet(${lit(path)}, ${PARQUET_READ})`);
      if (got[0] !== expected[0] || got[1] !== expected[1]) {
        throw new TieringError('TIER_VERIFY_FAILED', `deletion vector ${path} holds ${got[0]} positions, expected ${expected[0]}: nothing changed`);
      }
      await conn.run(`UPDATE _ducktail.tier_files SET deletion_vector = ${lit(path)}, dv_rows = ${expected[0]} WHERE id = ${f.id}`);
      await conn.run(`DELETE FROM _ducktail.tier_deletes WHERE file_id = ${f.id}`);
      if (f.deletionVector) await conn.run(`INSERT INTO _ducktail.tier_trash VALUES (${lit(f.deletionVector)}, now())`);
    }
    await opts.refresh();
    crashPoint('vector-before-commit');
    await conn.run('COMMIT');
    return files.length;
  } catch (e) {
    await conn.run('ROLLBACK').catch(() => {});
    for (const p of written) rmSync(p, { force: true });
    throw e;
  }
}
