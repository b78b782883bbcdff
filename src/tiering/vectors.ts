import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ColdStore } from './cold.ts';
import { crashPoint } from './fault.ts';
import { liveFiles, type ManifestFile } from './manifest.ts';
import { uploadedSize } from './move-cold.ts';
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

/** Where a cold file's deletion vector is copied in the cold store: outside the Hive layout, like on the warm disk. */
export function coldVectorLocation(store: ColdStore, f: ManifestFile): string {
  return store.locationOf(join('_deletes', f.kind, f.tableName, basename(f.deletionVector!)));
}

/** Live cold files of a table whose current deletion vector has no copy in the cold store yet. */
export async function coldVectorsToCopy(conn: DuckDBConnection, table: string): Promise<ManifestFile[]> {
  const files = await liveFiles(conn, `table_name = ${lit(table)} AND tier = 'cold' AND deletion_vector IS NOT NULL`);
  return files.filter((f) => !f.coldVector || basename(f.coldVector) !== basename(f.deletionVector!));
}

/**
 * Copies a cold file's deletion vector to the cold store beside the data (so the cold tier is complete
 * on its own: data, `_manifest.json` and vectors), checks the copy's size, then in one transaction
 * points `tier_files.cold_vector` at it and queues the previous copy for deletion after the grace. The
 * local vector stays what ducktail's views read. A crash before COMMIT leaves an orphan copy the sweep
 * removes; a failed upload leaves the previous copy (or none) and the next pass retries.
 */
export async function copyVectorToCold(
  store: ColdStore,
  exclusive: <T>(fn: (conn: DuckDBConnection) => Promise<T>) => Promise<T>,
  f: ManifestFile,
): Promise<string> {
  const local = f.deletionVector!;
  const location = coldVectorLocation(store, f);
  const bytes = statSync(local).size;
  await store.put(local, location);
  crashPoint('cold-vector-uploaded');
  const size = await uploadedSize(store, location, bytes);
  if (size !== bytes) {
    throw new TieringError('TIER_VERIFY_FAILED', `${location} has ${size} bytes, ${local} has ${bytes}: not switched, retried next pass`);
  }
  await exclusive(async (conn) => {
    await conn.run('BEGIN TRANSACTION');
    try {
      const r = await conn.runAndReadAll(
        `SELECT deletion_vector, cold_vector FROM _ducktail.tier_files WHERE id = ${f.id} AND retired_pass IS NULL`,
      );
      const row = r.getRows()[0];
      // Retired or given a newer vector meanwhile: this copy is an orphan (swept after the grace).
      if (!row || row[0] !== local) throw new TieringError('TIER_CONFLICT', `file ${f.location} changed while its deletion vector was copied`);
      await conn.run(`UPDATE _ducktail.tier_files SET cold_vector = ${lit(location)} WHERE id = ${f.id}`);
      if (row[1] && row[1] !== location) await conn.run(`INSERT INTO _ducktail.tier_trash VALUES (${lit(row[1] as string)}, now())`);
      await conn.run('COMMIT');
    } catch (e) {
      await conn.run('ROLLBACK').catch(() => {});
      throw e;
    }
  });
  return location;
}
