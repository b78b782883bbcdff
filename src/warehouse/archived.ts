import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from './pg-types.ts';
import type { MirrorTable } from './tables.ts';

/** SQL text of a row's key as tiering's locator stores it: key columns as DuckDB text joined by chr(31). */
export function keyTextSql(exprs: string[]): string {
  return exprs.length === 1 ? `(${exprs[0]})::VARCHAR` : `concat_ws(chr(31), ${exprs.map((e) => `(${e})::VARCHAR`).join(', ')})`;
}

/** The key text of a mirror table's row under `alias`. */
export function mirrorKeySql(m: MirrorTable, alias: string): string {
  return keyTextSql(m.keyIndexes.map((i) => `${alias}.${quoteIdent(m.columns[i]!.name)}`));
}

function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * An update or delete of keys whose row was archived to Parquet: records the row's position in
 * `_ducktail.tier_deletes` (found through the key -> (file, row) locator) and forgets the locator
 * entry, in the caller's transaction. The staged rows are columns c0..cn under `stage`
 * (PostgreSQL text, or already typed like the mirror).
 */
export async function supersedeArchived(
  conn: DuckDBConnection,
  m: MirrorTable,
  stage: string,
  lsn: bigint,
  /** The staged columns already have the mirror's types (no conversion from text). */
  typed = false,
): Promise<void> {
  const staged = keyTextSql(m.keyIndexes.map((i) => (typed ? `s.c${i}` : m.columns[i]!.fromText(`s.c${i}`))));
  const name = literal(m.name);
  const hit = `SELECT l.file_id, l.row FROM _ducktail.tier_locator l JOIN ${stage} s ON l.key = ${staged} WHERE l.table_name = ${name}`;
  const r = await conn.runAndReadAll(`INSERT INTO _ducktail.tier_deletes SELECT file_id, row, ${lsn}::UBIGINT FROM (${hit})`);
  if (Number(r.getRows()[0]?.[0] ?? 0) === 0) return;
  await conn.run(
    `DELETE FROM _ducktail.tier_locator l USING ${stage} s WHERE l.table_name = ${name} AND l.key = ${staged}`,
  );
}

/** A TRUNCATE: every archived current row of the table stops being current. */
export async function truncateArchived(conn: DuckDBConnection, m: MirrorTable, lsn: bigint): Promise<void> {
  const name = literal(m.name);
  await conn.run(
    `INSERT INTO _ducktail.tier_deletes SELECT file_id, row, ${lsn}::UBIGINT FROM _ducktail.tier_locator WHERE table_name = ${name}`,
  );
  await conn.run(`DELETE FROM _ducktail.tier_locator WHERE table_name = ${name}`);
}
