import type { DuckDBConnection } from '@duckdb/node-api';
import { type MirrorTable, timeTravelSql } from '../warehouse/index.ts';
import { type FileKind, liveFiles, type ManifestFile } from './manifest.ts';
import { readList, type TextColumn, textColumns } from './parquet-types.ts';
import { lit, listLit, PARQUET_READ } from './sql.ts';

/** Maps a manifest file to the local path DuckDB reads (warm path, cold folder, or cold cache). */
export type ReadPath = (f: ManifestFile) => string;

/**
 * The public view of one table kind: hot rows, plus the live Parquet files minus the rows recorded
 * as superseded (positions in `_ducktail.tier_deletes`), so a row is seen exactly once.
 */
export function viewSql(m: MirrorTable, kind: FileKind, files: ManifestFile[], readPath: ReadPath, text: TextColumn[] = []): string {
  const hot = kind === 'current' ? m.current : m.history;
  const name = kind === 'current' ? m.currentView : m.historyView;
  if (files.length === 0) return `CREATE OR REPLACE VIEW ${name} AS SELECT * FROM ${hot}`;
  const paths = files.map(readPath);
  const scan = `read_parquet(${listLit(paths)}, ${PARQUET_READ}, file_row_number = true)`;
  let archived = `SELECT ${readList(text, 'p', 'file_row_number')} FROM ${scan} p`;
  if (kind === 'current') {
    // Superseded rows by position: (index of the file in this list, row number inside the file).
    const ids = files.map((f, i) => `(${i}, ${f.id})`).join(', ');
    archived +=
      ` ANTI JOIN (SELECT f.idx, d.row FROM _ducktail.tier_deletes d JOIN (VALUES ${ids}) f(idx, id) ON d.file_id = f.id) x` +
      ' ON p.file_index = x.idx AND p.file_row_number = x.row';
  }
  return `CREATE OR REPLACE VIEW ${name} AS SELECT * FROM ${hot} UNION ALL BY NAME ${archived}`;
}

/** Rewrites both public views of a table from the manifest (inside the caller's transaction). */
export async function refreshViews(conn: DuckDBConnection, m: MirrorTable, readPath: ReadPath): Promise<void> {
  const files = await liveFiles(conn, `table_name = ${lit(m.name)}`);
  for (const kind of ['current', 'history'] as const) {
    const text = await textColumns(conn, kind === 'current' ? m.current : m.history);
    await conn.run(viewSql(m, kind, files.filter((f) => f.kind === kind), readPath, text));
  }
  for (const macro of timeTravelSql(m)) await conn.run(macro);
}
