import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { HIDDEN_COLUMNS, type MirrorTable } from '../warehouse/index.ts';
import type { ColdStore } from './cold.ts';
import { type FileKind, liveFiles, type ManifestFile } from './manifest.ts';
import { lit } from './sql.ts';
import { supersededSql } from './views.ts';

/**
 * `_manifest.json` beside a table's files (warm folder and cold store), so other engines can use the
 * lake without ducktail: the schema, every live file of every tier with its statistics, and the rows
 * of each file that were superseded later (file_row_number positions to skip).
 */
export async function lakeManifest(conn: DuckDBConnection, m: MirrorTable, kind: FileKind, timeColumn: string, folder: string) {
  const files = await liveFiles(conn, `table_name = ${lit(m.name)} AND kind = ${lit(kind)}`);
  const ids = files.map((f) => f.id).join(', ') || 'NULL';
  const dels = await conn.runAndReadAll(`SELECT file_id, list(row ORDER BY row) FROM (${supersededSql(files)}) WHERE file_id IN (${ids}) GROUP BY file_id`);
  const deleted = new Map(dels.getRows().map((r) => [Number(r[0]), (r[1] as { items: unknown[] }).items.map(Number)]));
  const cols = await conn.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE ${kind === 'current' ? m.current : m.history})`);
  return {
    table: m.name,
    kind,
    format: 'parquet',
    layout: 'Hive: month=YYYY-MM/part-<pass>-<file id>.parquet; read with hive_partitioning = true',
    time_column: kind === 'current' ? timeColumn : '_commit_ts',
    key: m.keyIndexes.map((i) => m.columns[i]!.name),
    columns: cols.getRows().filter(([name]) => !(HIDDEN_COLUMNS as readonly unknown[]).includes(name)).map(([name, type]) => ({ name, type, ...(/INTERVAL|TIME WITH TIME ZONE/.test(String(type)) ? { stored_as: 'VARCHAR' } : {}) })),
    updated_at: new Date().toISOString(),
    files: files.map((f) => ({
      path: f.tier === 'warm' ? relative(folder, f.location) : f.location,
      tier: f.tier,
      month: f.month,
      row_count: f.rowCount,
      byte_size: f.byteSize,
      checksum: f.checksum,
      first_row_id: f.firstRowId,
      min_time: f.minTime,
      max_time: f.maxTime,
      min_key: f.minKey,
      max_key: f.maxKey,
      min_lsn: f.minLsn,
      max_lsn: f.maxLsn,
      // Positions to skip: the inline ones and those of the deletion vector (also listed here).
      deleted_rows: deleted.get(f.id) ?? [],
      // Its deletion vector (Parquet of `row`, `lsn`): warm files, a path relative to this folder like
      // `path`; cold files, its copy in the cold store (absolute like `path`; until the current vector
      // is copied, e.g. with the store unreachable, the warm one rather than an older copy).
      deletion_vector: f.deletionVector ? (currentCopy(f) ?? relative(folder, f.deletionVector)) : null,
      // The file's own columns with PostgreSQL's attnums: match them to `columns` after a RENAME/DROP COLUMN.
      layout: f.layout ? JSON.parse(f.layout) : null,
    })),
  };
}

/** A cold file's copy of its current deletion vector in the cold store, if made (same name as the local vector). */
function currentCopy(f: ManifestFile): string | null {
  return f.tier === 'cold' && f.coldVector && basename(f.coldVector) === basename(f.deletionVector!) ? f.coldVector : null;
}

/** Writes the manifests of a table (both kinds) to the warm folder and the cold store. */
export async function writeLakeManifests(
  conn: DuckDBConnection,
  m: MirrorTable,
  timeColumn: string,
  warmDir: string,
  store: ColdStore,
): Promise<void> {
  for (const kind of ['current', 'history'] as const) {
    const folder = join(warmDir, kind, m.name);
    const body = JSON.stringify(await lakeManifest(conn, m, kind, timeColumn, folder), null, 1);
    mkdirSync(folder, { recursive: true });
    const tmp = join(folder, '_manifest.json.tmp');
    writeFileSync(tmp, body);
    renameSync(tmp, join(folder, '_manifest.json'));
    try {
      await store.put(join(folder, '_manifest.json'), store.locationOf(join(kind, m.name, '_manifest.json')));
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}
