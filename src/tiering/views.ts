import type { DuckDBConnection } from '@duckdb/node-api';
import { hotCurrentSql, hotHistorySql, type MirrorTable, quoteIdent, timeTravelSql } from '../warehouse/index.ts';
import { mapColumns } from './layout.ts';
import { type FileKind, liveFiles, type ManifestFile } from './manifest.ts';
import { readList, type TextColumn, textColumns } from './parquet-types.ts';
import { lit, listLit, PARQUET_READ } from './sql.ts';

/** Maps a manifest file to the local path DuckDB reads (warm path, cold folder, or cold cache). */
export type ReadPath = (f: ManifestFile) => string;

/** What the archived part of a table kind is built from. */
export interface ArchivedInput {
  m: MirrorTable;
  kind: FileKind;
  files: ManifestFile[];
  readPath: ReadPath;
  /** Text-stored columns to cast back (none: rows as the files hold them, e.g. for compaction). */
  text: TextColumn[];
  /** Columns of the hot history table (where dropped columns live on as `<name>__dropped`). */
  historyColumns: string[];
  /** Group files by tier and year and guard each group by the manifest's min/max (queries skip groups). */
  guards: boolean;
  /** The tiering time column of the current state (guards). */
  timeColumn?: string;
}

const DAY_MS = 86_400_000;
const INTEGER = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT)$/;
/** Key types whose min/max text casts back exactly, whatever the session's settings, and the text each must look like. */
const CAST_BACK: [RegExp, RegExp][] = [
  [/^VARCHAR$/, /^/],
  [/^UUID$/, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i],
  [/^DATE$/, /^\d{4,}-\d\d-\d\d( \(BC\))?$/],
  [/^DECIMAL\(\d+,\s*\d+\)$/, /^-?\d+(\.\d+)?$/],
];
/** Whether every bound is a value of the key's type as text (a file written before a type change is not: no guard). */
function castsBack(duckType: string, bounds: (string | null)[][]): boolean {
  const shape = CAST_BACK.find(([type]) => type.test(duckType))?.[1];
  return shape !== undefined && bounds.every((b) => b.every((v) => v !== null && shape.test(v)));
}

/**
 * A condition every row of the files holds, from the manifest's min/max: the time column (widened by
 * a day on each side, so a session time zone converting DATE or TIMESTAMP never cuts a row) and a
 * single key of an integer, text, UUID, DATE or DECIMAL type (history: the commit LSN). DuckDB combines it with a query's own predicates on those
 * columns and plans a group whose range cannot match as empty: its files are never read.
 */
function guardSql(a: ArchivedInput, files: ManifestFile[]): string {
  const conds: string[] = [];
  const times = files.flatMap((f) => (f.minTimeMs !== null && f.maxTimeMs !== null ? [[f.minTimeMs, f.maxTimeMs]] : []));
  const timeCol = a.kind === 'history' ? { name: '_commit_ts', duckType: 'TIMESTAMPTZ' } : a.m.columns.find((c) => c.name === a.timeColumn);
  if (timeCol && /^(DATE|TIMESTAMP.*)$/.test(timeCol.duckType) && times.length === files.length) {
    const iso = (ms: number) => `CAST(TIMESTAMPTZ ${lit(new Date(ms).toISOString())} AS ${timeCol.duckType})`;
    const lo = Math.min(...times.map((t) => t[0]!)) - DAY_MS;
    const hi = Math.max(...times.map((t) => t[1]!)) + DAY_MS;
    conds.push(`${quoteIdent(timeCol.name)} BETWEEN ${iso(lo)} AND ${iso(hi)}`);
  }
  const keyCol = a.kind === 'history' ? { name: '_lsn', duckType: 'UBIGINT' } : a.m.keyIndexes.length === 1 ? a.m.columns[a.m.keyIndexes[0]!] : undefined;
  const bounds = files.map((f) => (a.kind === 'history' ? [f.minLsn, f.maxLsn] : [f.minKey, f.maxKey]));
  if (keyCol && INTEGER.test(keyCol.duckType) && bounds.every((b) => b.every((v) => v !== null && /^-?\d+$/.test(v)))) {
    const nums = bounds.map((b) => b.map((v) => BigInt(v!)));
    const lo = nums.reduce((m, b) => (b[0]! < m ? b[0]! : m), nums[0]![0]!);
    const hi = nums.reduce((m, b) => (b[1]! > m ? b[1]! : m), nums[0]![1]!);
    conds.push(`${quoteIdent(keyCol.name)} BETWEEN ${lo} AND ${hi}`);
  } else if (keyCol && a.kind === 'current' && castsBack(keyCol.duckType, bounds)) {
    // Text, UUID, DATE and DECIMAL keys: the bounds cast back to the key's type (exact for these, and
    // free of the session time zone), the group's smallest and largest compared in DuckDB itself.
    const typed = (v: string) => `CAST(${lit(v)} AS ${keyCol.duckType})`;
    const lo = bounds.map((b) => typed(b[0]!)).join(', ');
    const hi = bounds.map((b) => typed(b[1]!)).join(', ');
    const range = bounds.length === 1 ? `${lo} AND ${hi}` : `least(${lo}) AND greatest(${hi})`;
    conds.push(`${quoteIdent(keyCol.name)} BETWEEN ${range}`);
  }
  return conds.length > 0 ? ` WHERE ${conds.join(' AND ')}` : '';
}

/**
 * The rows of a table kind's live files under the table's current layout (renamed columns under
 * their new names, dropped ones left out), minus the rows recorded as superseded (positions in
 * `_ducktail.tier_deletes`), so a row is seen exactly once. Files are read in groups of one layout
 * (and, with guards, one tier and year).
 */
export function archivedSql(a: ArchivedInput): string {
  const groups = new Map<string, ManifestFile[]>();
  for (const f of a.files) {
    const k = `${f.layout ?? ''}\u0000${a.guards ? `${f.tier}:${f.month.slice(0, 4)}` : ''}`;
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  const parts = [...groups.values()].map((files) => {
    const map = mapColumns(a.m, a.kind, files[0]!.layout, a.historyColumns);
    const exclude = ['file_row_number', ...map.drops].map(quoteIdent).join(', ');
    const rename = map.renames.length > 0 ? ` RENAME (${map.renames.map(([f, t]) => `${quoteIdent(f)} AS ${quoteIdent(t)}`).join(', ')})` : '';
    const position = a.kind === 'current' ? `, ([${files.map((f) => f.id).join(", ")}]::BIGINT[])[p.file_index::BIGINT + 1] AS _tier_file, p.file_row_number AS _tier_row` : '';
    const scan = `read_parquet(${listLit(files.map(a.readPath))}, ${PARQUET_READ}, file_row_number = true)`;
    const text = a.text.filter((t) => map.present === null || map.present.has(t.name));
    return `SELECT ${readList(text, 'q')} FROM (SELECT p.* EXCLUDE (${exclude})${rename}${position} FROM ${scan} p) q${a.guards ? guardSql(a, files) : ''}`;
  });
  const all = parts.join(' UNION ALL BY NAME ');
  if (a.kind === 'history') return all;
  return `SELECT a.* EXCLUDE (_tier_file, _tier_row) FROM (${all}) a ANTI JOIN (${supersededSql(a.files)}) d ON a._tier_file = d.file_id AND a._tier_row = d.row`;
}

/**
 * Positions (file_id, row) of superseded archived rows: the inline ones (`_ducktail.tier_deletes`)
 * and those of the files' deletion vectors (local Parquet files of positions, one per data file).
 */
export function supersededSql(files: ManifestFile[]): string {
  const inline = 'SELECT file_id, row FROM _ducktail.tier_deletes';
  const withVector = files.filter((f) => f.deletionVector);
  if (withVector.length === 0) return inline;
  const ids = withVector.map((f) => f.id).join(', ');
  const vectors = `read_parquet(${listLit(withVector.map((f) => f.deletionVector!))}, ${PARQUET_READ})`;
  return `${inline} UNION ALL SELECT ([${ids}]::BIGINT[])[v.file_index::BIGINT + 1], v.row FROM ${vectors} v`;
}

/** The public view of one table kind: hot rows, plus the archived rows of the live files. */
export function viewSql(a: ArchivedInput): string {
  // Hot rows: the current table without its hidden copy columns; the history table and the `R` rows derived
  // from the copied current rows whose `R` rows are not stored (src/warehouse/lazy-copy.ts).
  const hot = a.kind === 'current' ? hotCurrentSql(a.m) : hotHistorySql(a.m);
  const name = a.kind === 'current' ? a.m.currentView : a.m.historyView;
  if (a.files.length === 0) return `CREATE OR REPLACE VIEW ${name} AS ${hot}`;
  return `CREATE OR REPLACE VIEW ${name} AS ${hot} UNION ALL BY NAME ${archivedSql(a)}`;
}

/** Column names of a table or view. */
export async function columnsOf(conn: DuckDBConnection, relation: string): Promise<string[]> {
  const r = await conn.runAndReadAll(`SELECT column_name FROM (DESCRIBE ${relation})`);
  return r.getRows().map((x) => x[0] as string);
}

/**
 * Rewrites both public views of a table from the manifest and the table's current layout (inside
 * the caller's transaction: an archive move, or the apply transaction of a schema change).
 */
export async function refreshViews(conn: DuckDBConnection, m: MirrorTable, readPath: ReadPath, timeColumn?: string): Promise<void> {
  const files = await liveFiles(conn, `table_name = ${lit(m.name)}`);
  const historyColumns = await columnsOf(conn, m.history);
  for (const kind of ['current', 'history'] as const) {
    const text = await textColumns(conn, kind === 'current' ? m.current : m.history);
    const mine = files.filter((f) => f.kind === kind);
    await conn.run(viewSql({ m, kind, files: mine, readPath, text, historyColumns, guards: true, ...(timeColumn ? { timeColumn } : {}) }));
  }
  for (const macro of timeTravelSql(m)) await conn.run(macro);
}
