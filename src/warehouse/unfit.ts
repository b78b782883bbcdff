/**
 * Values a DuckDB column cannot hold exactly (a mapping's `unfit` predicate, src/warehouse/pg-types.ts)
 * are stored as NULL by the column's conversion and kept, exactly, in `_ducktail.unfit_values`: the
 * apply goes on instead of failing on every retry (docs/TYPES.md).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from './pg-types.ts';
import type { MirrorTable } from './tables.ts';

const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * Records the unfit values of the staged rows headed for history (`historyFlag` set in `_flags`)
 * into `_ducktail.unfit_values`, inside the caller's transaction; returns how many.
 * Staged columns hold PostgreSQL text (`textOf`), with `_lsn` and `_seq`.
 */
export async function recordUnfit(
  conn: DuckDBConnection,
  m: MirrorTable,
  stage: string,
  historyFlag: number,
  /** The staged PostgreSQL text of column i (default `s.c<i>`). */
  textOf: (i: number) => string = (i) => `s.c${i}`,
  /** For a stage without `_flags`, `_lsn`, `_seq` (a copied chunk): the rows to read and their position. */
  rows?: { filter: string; lsn: string; seq: string },
): Promise<number> {
  const cols = m.columns.flatMap((c, i) => (c.unfit ? [{ name: c.name, unfit: c.unfit, i }] : []));
  if (cols.length === 0) return 0;
  const key = `CAST(to_json([${m.keyIndexes.map(textOf).join(', ')}]) AS VARCHAR)`;
  const selects = cols.map(
    ({ name, unfit, i }) =>
      `SELECT ${literal(m.name)}, ${literal(name)}, ${key}, ${rows?.lsn ?? 's._lsn'}, ${rows?.seq ?? 's._seq'}, ${textOf(i)}, now() ` +
      `FROM ${stage} s WHERE ${rows?.filter ?? `s._flags & ${historyFlag} <> 0`} AND ${textOf(i)} IS NOT NULL AND ${unfit(textOf(i))}`,
  );
  const r = await conn.run(`INSERT INTO _ducktail.unfit_values ${selects.join(' UNION ALL ')}`);
  return Number(r.rowsChanged);
}

/** How many unfit values are kept, per "table.column". */
export async function countUnfit(conn: DuckDBConnection): Promise<Record<string, number>> {
  const r = await conn.runAndReadAll(
    `SELECT table_name || '.' || ${quoteIdent('column_name')}, count(*) FROM _ducktail.unfit_values GROUP BY ALL ORDER BY 1`,
  );
  return Object.fromEntries((r.getRows() as [string, bigint][]).map(([k, n]) => [k, Number(n)]));
}
