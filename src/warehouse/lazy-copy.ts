/**
 * Lazy `R` rows of the initial copy (docs/PERFORMANCE.md, "Initial copy"; docs/TIERING.md, top).
 *
 * A raw chunk of the initial copy (copy.ts) writes only the hot current table: each copied row carries its
 * history position in two hidden columns, `_ducktail_copy_seq` (the `_seq` of its `R` row at `_lsn` 0) and
 * `_ducktail_copy_ts` (the copy's commit time). The history view derives the `R` row of every current row that
 * still has them (`derivedSql`), so the history reads as if the `R` rows had been written with the copy.
 *
 * The rule that keeps every `(0, seq)` in the history view exactly once: a current row has `_ducktail_copy_seq`
 * set if and only if its `R` row is not stored in the hot history table. So every writer step that changes,
 * removes or rewrites a current row with it set first stores that row's `R` row in the hot history, in the same
 * transaction (`materialize`): the apply path before it deletes a replaced or deleted key (stage.ts), a truncate
 * or re-copy before it empties the table (stage.ts), a layout change before it alters the table (tables.ts),
 * tiering before it moves current rows to the warm tier (src/tiering/warm.ts); and an archive pass stores those
 * older than its cutoff (`storeAgedCopies`, src/tiering/pass.ts) so the archived history holds them as before.
 * The cost moves to the stream: every batch that replaces or deletes keys of such a table joins them with the
 * current table (docs/PERFORMANCE.md), but only until the backfill is done: once a copy is complete (its end
 * marker, a re-copy's hand-over, a quiet second after its last chunk, or at open), the warehouse stores the
 * remaining `R` rows in slices (`backfillSlice`: one `_ducktail_copy_seq` range, `materialize` + `clearCopied`,
 * one transaction on the writer, stream batches between slices; src/warehouse/index.ts). A crash loses no slice
 * half-done; the next run continues with the positions left. The warehouse keeps per table whether positions
 * may remain (CopyShared.copied: found at open, set by a chunk, removed by the backfill once none remain), and
 * the apply path (stage.ts) stores nothing for the others. Rows the apply path inserts, and
 * the rows of a copy that travels as changes (the Kafka bus, copy-seq.ts: its `R` rows are stored as before),
 * leave the hidden columns NULL.
 *
 * Tables created before this existed have no hidden columns (`MirrorTable.lazyCopy` false): their copies store
 * the `R` rows with the chunk, as before.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from './pg-types.ts';

/** The hidden columns of a hot current table (never in the public view or the archived files). */
export const COPY_SEQ = '_ducktail_copy_seq';
export const COPY_TS = '_ducktail_copy_ts';
export const HIDDEN_COLUMNS = [COPY_SEQ, COPY_TS] as const;

/** What the lazy `R` rows need of a table (a MirrorTable has all of it). */
interface LazyTable {
  current: string;
  history: string;
  columns: { name: string }[];
  lazyCopy: boolean;
}

/** The hidden columns' definitions, appended to a new hot current table's columns. */
export const HIDDEN_DEFS = `${COPY_SEQ} INTEGER, ${COPY_TS} TIMESTAMPTZ`;

/** `EXCLUDE (...)` of the hidden columns for `SELECT *` over the hot current table ('' when it has none). */
export function excludeHidden(m: { lazyCopy: boolean }): string {
  return m.lazyCopy ? ` EXCLUDE (${HIDDEN_COLUMNS.join(', ')})` : '';
}

/** The hot current rows as the public view shows them: the hidden columns left out. */
export function hotCurrentSql(m: LazyTable): string {
  return `SELECT *${excludeHidden(m)} FROM ${m.current}`;
}

/**
 * The derived `R` rows: every hot current row whose `R` row is not stored, as a history row. Written with
 * `*` so it stays valid across ADD/DROP/RENAME COLUMN (the view is bound at query time).
 */
export function derivedSql(m: LazyTable): string {
  return (
    `SELECT * EXCLUDE (${COPY_SEQ}, ${COPY_TS}), 'R' AS _op, 0::UBIGINT AS _lsn, ${COPY_SEQ} AS _seq, ${COPY_TS} AS _commit_ts ` +
    `FROM ${m.current} WHERE ${COPY_SEQ} IS NOT NULL`
  );
}

/** The hot part of the history view: the stored rows and the derived `R` rows. */
export function hotHistorySql(m: LazyTable): string {
  if (!m.lazyCopy) return `SELECT * FROM ${m.history}`;
  return `SELECT * FROM ${m.history} UNION ALL BY NAME ${derivedSql(m)}`;
}

/**
 * Stores the `R` rows of the hot current rows (alias `t`) that still have a copy position and match `where`
 * (SQL over `t`) or `join` (e.g. `SEMI JOIN ... ON ...`), inside the caller's transaction, before it removes
 * those rows. Rows that stay must then have their position cleared (`clearCopied`). Returns how many.
 */
export async function materialize(conn: DuckDBConnection, m: LazyTable, opts: { where?: string; join?: string } = {}): Promise<number> {
  if (!m.lazyCopy) return 0;
  const names = m.columns.map((c) => quoteIdent(c.name));
  const r = await conn.run(
    `INSERT INTO ${m.history} (${names.join(', ')}, _op, _lsn, _seq, _commit_ts) ` +
      `SELECT ${names.map((n) => `t.${n}`).join(', ')}, 'R', 0, t.${COPY_SEQ}, t.${COPY_TS} FROM ${m.current} t${opts.join ? ` ${opts.join}` : ''} ` +
      `WHERE t.${COPY_SEQ} IS NOT NULL${opts.where ? ` AND (${opts.where})` : ''}`,
  );
  return Number(r.rowsChanged);
}

/**
 * Clears every current row's copy position (their `R` rows were just stored by `materialize`). DuckDB refuses to
 * commit an ALTER TABLE after an UPDATE or DELETE of the same table in one transaction, so a layout change
 * stores the `R` rows (an INSERT into the history) before its ALTERs and clears the positions after them.
 */
export async function clearCopied(conn: DuckDBConnection, m: LazyTable, where?: string): Promise<void> {
  if (!m.lazyCopy) return;
  await conn.run(`UPDATE ${m.current} t SET ${COPY_SEQ} = NULL, ${COPY_TS} = NULL WHERE t.${COPY_SEQ} IS NOT NULL${where ? ` AND (${where})` : ''}`);
}

/**
 * Stores the derived `R` rows committed (the copy's time) before `cutoff` and clears their positions, in one
 * transaction of its own: tiering calls it before it moves a table's history to the warm tier, so the archived
 * history holds the copy's `R` rows once they are as old as any other history row it moves (the lake read
 * without ducktail sees them as it did when they were stored with the copy). Returns how many.
 */
export async function storeAgedCopies(conn: DuckDBConnection, m: LazyTable, cutoff: string): Promise<number> {
  if (!m.lazyCopy) return 0;
  return storeInOwnTransaction(conn, m, `t.${COPY_TS} < '${cutoff.replaceAll("'", "''")}'::TIMESTAMPTZ`);
}

/**
 * The copy positions a table still has: the smallest and largest `_ducktail_copy_seq` and how many rows (null
 * when none). The backfill slices this range.
 */
export async function copiedRange(conn: DuckDBConnection, m: LazyTable): Promise<{ min: bigint; max: bigint; rows: number } | null> {
  if (!m.lazyCopy) return null;
  const r = await conn.runAndReadAll(
    `SELECT min(${COPY_SEQ})::BIGINT, max(${COPY_SEQ})::BIGINT, count(*) FROM ${m.current} WHERE ${COPY_SEQ} IS NOT NULL`,
  );
  const [min, max, rows] = r.getRows()[0] as [bigint | null, bigint | null, bigint];
  return min === null || max === null ? null : { min, max, rows: Number(rows) };
}

/**
 * One slice of the backfill: stores the `R` rows of the copied rows whose position is in `[from, to)` and clears
 * those positions, in one transaction of its own (a crash leaves the slice whole or untouched: the next run
 * continues with the positions still set). Returns how many.
 */
export async function backfillSlice(conn: DuckDBConnection, m: LazyTable, from: bigint, to: bigint): Promise<number> {
  if (!m.lazyCopy) return 0;
  return storeInOwnTransaction(conn, m, `t.${COPY_SEQ} >= ${BigInt(from)} AND t.${COPY_SEQ} < ${BigInt(to)}`);
}

/** Stores the `R` rows of the copied rows `where` selects and clears their positions, in one transaction. */
async function storeInOwnTransaction(conn: DuckDBConnection, m: LazyTable, where: string): Promise<number> {
  await conn.run('BEGIN TRANSACTION');
  try {
    const n = await materialize(conn, m, { where });
    if (n > 0) await clearCopied(conn, m, where);
    await conn.run('COMMIT');
    return n;
  } catch (e) {
    await conn.run('ROLLBACK').catch(() => {});
    throw e;
  }
}

/** Whether a hot current table has the hidden columns (tables created before lazy `R` rows do not). */
export async function hasHiddenColumns(conn: DuckDBConnection, schema: string, table: string): Promise<boolean> {
  const r = await conn.runAndReadAll(
    'SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = $1 AND table_name = $2 AND column_name = $3',
    [schema, table, COPY_SEQ],
  );
  return Number(r.getRows()[0]![0]) > 0;
}
