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
 * (PostgreSQL text, or already typed like the mirror), with their change's `_lsn` when typed.
 *
 * A change supersedes an archived row only when its LSN is higher than the archived version's
 * (`tier_locator.lsn`): a replayed older change leaves a newer archived version in place, and when
 * `stageTable` (the staging table under `stage`) is given, its rows of such keys at or before the
 * archived version are removed, so the replay writes nothing hot or to the history either.
 */
export async function supersedeArchived(
  conn: DuckDBConnection,
  m: MirrorTable,
  stage: string,
  lsn: bigint,
  /** The staged columns already have the mirror's types (no conversion from text). */
  typed = false,
  stageTable?: string,
): Promise<void> {
  const staged = keyTextSql(m.keyIndexes.map((i) => (typed ? `s.c${i}` : m.columns[i]!.fromText(`s.c${i}`))));
  const name = literal(m.name);
  if (!(await hasArchived(conn, name))) return;
  const changeLsn = typed ? 's._lsn' : `${lsn}::UBIGINT`;
  // One join with the locator: the archived rows of the staged keys, their version and the change's LSN.
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE _tier_hits AS SELECT l.file_id, l.row, l.key, l.lsn AS version, ${changeLsn} AS change ` +
      `FROM _ducktail.tier_locator l JOIN ${stage} s ON l.key = ${staged} WHERE l.table_name = ${name}`,
  );
  // A change of unknown position (LSN 0: a copied row) always applies, as before versions were kept.
  const newer = '(h.change > h.version OR h.change = 0)';
  const r = await conn.runAndReadAll(`INSERT INTO _ducktail.tier_deletes SELECT file_id, row, change FROM temp.main._tier_hits h WHERE ${newer}`);
  if (Number(r.getRows()[0]?.[0] ?? 0) > 0) {
    await conn.run(
      `DELETE FROM _ducktail.tier_locator l USING temp.main._tier_hits h WHERE l.table_name = ${name} AND l.file_id = h.file_id AND l.row = h.row AND ${newer}`,
    );
  }
  if (stageTable && typed) {
    // Replayed changes at or before the archived version: not applied at all.
    await conn.run(`DELETE FROM ${stageTable} s USING temp.main._tier_hits h WHERE NOT ${newer} AND h.key = ${staged} AND s._lsn <= h.version`);
  }
}

/** Whether the table has live archived current-state files (the manifest is small; the locator is not). */
async function hasArchived(conn: DuckDBConnection, name: string): Promise<boolean> {
  const r = await conn.runAndReadAll(
    `SELECT count(*) FROM _ducktail.tier_files WHERE table_name = ${name} AND kind = 'current' AND retired_pass IS NULL`,
  );
  return Number(r.getRows()[0]![0]) > 0;
}

/**
 * A TRUNCATE at `lsn`: every archived current row of the table of an older version stops being
 * current; all of them at LSN 0 (a copy's reset).
 */
export async function truncateArchived(conn: DuckDBConnection, m: MirrorTable, lsn: bigint): Promise<void> {
  const where = `table_name = ${literal(m.name)}${lsn === 0n ? '' : ` AND lsn < ${lsn}::UBIGINT`}`;
  await conn.run(`INSERT INTO _ducktail.tier_deletes SELECT file_id, row, ${lsn}::UBIGINT FROM _ducktail.tier_locator WHERE ${where}`);
  await conn.run(`DELETE FROM _ducktail.tier_locator WHERE ${where}`);
}
