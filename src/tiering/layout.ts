import type { DuckDBConnection } from '@duckdb/node-api';
import type { MirrorTable } from '../warehouse/index.ts';
import type { FileKind } from './manifest.ts';
import { lit, PARQUET_READ } from './sql.ts';

/**
 * One column of the layout a file was written with: its name then and PostgreSQL's column number
 * (attnum, unchanged by a rename; absent when the source did not know it).
 */
export interface LayoutColumn {
  name: string;
  attnum?: number;
}

/**
 * The layout of a file just written from the hot table: the file's columns that are columns of the
 * table (with their attnums); other columns (history's `_op`, `<name>__dropped`, ...) are not listed
 * and are read by name. Stored in the manifest (`tier_files.layout`, JSON).
 */
export async function fileLayout(conn: DuckDBConnection, m: MirrorTable, path: string): Promise<string> {
  const r = await conn.runAndReadAll(`SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(${lit(path)}, ${PARQUET_READ}))`);
  const inFile = new Set(r.getRows().map((x) => x[0] as string));
  const cols: LayoutColumn[] = m.schema.columns
    .filter((c) => inFile.has(c.name))
    .map((c) => (c.attnum !== undefined ? { name: c.name, attnum: c.attnum } : { name: c.name }));
  return JSON.stringify(cols);
}

/** How the columns of a file read under the table's current layout. */
export interface ColumnMapping {
  /** [name in the file, current name] of renamed columns. */
  renames: [string, string][];
  /** Columns of the file the table no longer has. */
  drops: string[];
  /** Current names of the table's columns the file holds (null: unknown, the file predates layouts). */
  present: Set<string> | null;
}

/**
 * Maps a file's columns to the current layout, as the warehouse's schema changes did to the hot
 * tables (src/warehouse/schema-change.ts): by attnum when both sides know it, else by name. A column
 * the table dropped is left out of the current state; in the history it reads as the hot history's
 * `<name>__dropped` column (the most recent one when the name was dropped more than once).
 */
export function mapColumns(m: MirrorTable, kind: FileKind, layoutJson: string | null, historyColumns: string[]): ColumnMapping {
  if (!layoutJson) return { renames: [], drops: [], present: null };
  const layout = JSON.parse(layoutJson) as LayoutColumn[];
  const current = m.schema.columns;
  const out: ColumnMapping = { renames: [], drops: [], present: new Set() };
  for (const f of layout) {
    const c =
      f.attnum !== undefined && current.some((x) => x.attnum !== undefined)
        ? current.find((x) => x.attnum === f.attnum)
        : current.find((x) => x.name === f.name && (x.attnum === undefined || f.attnum === undefined));
    if (c) {
      out.present!.add(c.name);
      if (c.name !== f.name) out.renames.push([f.name, c.name]);
      continue;
    }
    const suffix = (h: string) => Number(h.slice(`${f.name}__dropped`.length) || 1);
    const kept =
      kind === 'history'
        ? historyColumns
            .filter((h) => new RegExp(`^${escape(f.name)}__dropped\\d*$`).test(h))
            .sort((a, b) => suffix(a) - suffix(b))
            .at(-1)
        : undefined;
    if (kept) {
      out.renames.push([f.name, kept]);
      out.present!.add(kept);
    } else out.drops.push(f.name);
  }
  return out;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
