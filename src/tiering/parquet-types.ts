import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from '../warehouse/index.ts';

/**
 * Types Parquet cannot hold exactly, written as text and cast back on read: INTERVAL (Parquet's
 * interval has no negative parts, PostgreSQL's does) and TIMETZ (Parquet keeps the instant in UTC
 * and drops the offset), and lists of them.
 */
const TEXT_STORED = ['INTERVAL', 'TIME WITH TIME ZONE'];

/** A column stored as text in Parquet, with its DuckDB type. */
export interface TextColumn {
  name: string;
  type: string;
}

/** The text-stored columns of a hot table. */
export async function textColumns(conn: DuckDBConnection, hot: string): Promise<TextColumn[]> {
  const r = await conn.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE ${hot})`);
  return r
    .getRows()
    .map(([name, type]) => ({ name: name as string, type: type as string }))
    .filter((c) => TEXT_STORED.some((t) => c.type.includes(t)));
}

/** Select list writing a hot row to Parquet: `*`, with text-stored columns as VARCHAR; `exclude`: e.g. ` EXCLUDE (...)`. */
export function writeList(cols: TextColumn[], exclude = ''): string {
  if (cols.length === 0) return `*${exclude}`;
  return `*${exclude} REPLACE (${cols.map((c) => `CAST(${quoteIdent(c.name)} AS VARCHAR) AS ${quoteIdent(c.name)}`).join(', ')})`;
}

/** Select list reading a Parquet row back with the hot table's types; `exclude` drops reader columns. */
export function readList(cols: TextColumn[], alias: string, exclude?: string): string {
  const ex = exclude ? ` EXCLUDE (${exclude})` : '';
  if (cols.length === 0) return `${alias}.*${ex}`;
  const casts = cols.map((c) => `CAST(${alias}.${quoteIdent(c.name)} AS ${c.type}) AS ${quoteIdent(c.name)}`).join(', ');
  return `${alias}.*${ex} REPLACE (${casts})`;
}
