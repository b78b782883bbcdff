/**
 * Live schema changes of a mirrored table, applied in place inside the apply transaction:
 * ADD, DROP and RENAME COLUMN, and type widening (int2 -> int4 -> int8, float4 -> float8,
 * numeric precision up, a wider or unbounded varchar, the same for array elements).
 * Columns are matched by attnum (PostgreSQL's column number, kept across renames) when the source
 * knows it, else by name. The rules are documented in docs/SCHEMA-CHANGES.md.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ColumnSchema, TableSchema } from '../change/index.ts';
import { RecopyNeeded } from '../errors.ts';
import { type ColumnMapping, quoteIdent } from './pg-types.ts';

/** What changes between two layouts of one table. */
export interface LayoutChange {
  /** Added columns, with the value the table's existing rows have (ADD COLUMN ... DEFAULT), if any. */
  adds: { column: ColumnMapping; missing?: string }[];
  drops: ColumnMapping[];
  renames: { from: string; to: string }[];
  retypes: { name: string; from: string; to: string }[];
  /** Type changes DuckDB cannot apply in place (the table must be copied again). */
  incompatible: { name: string; from: string; to: string }[];
  /** Columns added by a table rewrite PostgreSQL does not decode (volatile default, generated): copy again. */
  rewritten: string[];
  /** The new layout with attnums carried over from the old one where the source did not send them. */
  schema: TableSchema;
}

const INT_DIGITS: Record<string, number> = { SMALLINT: 5, INTEGER: 10, BIGINT: 19 };
const INT_RANK: Record<string, number> = { SMALLINT: 1, INTEGER: 2, BIGINT: 3 };

function decimal(t: string): { p: number; s: number } | null {
  const m = /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
  return m ? { p: Number(m[1]), s: Number(m[2]) } : null;
}

/** Whether every value of DuckDB type `from` converts exactly to `to` (a widening). */
export function isWidening(from: string, to: string): boolean {
  if (from === to) return true;
  if (from.endsWith('[]') && to.endsWith('[]')) return isWidening(from.slice(0, -2), to.slice(0, -2));
  if (INT_RANK[from] && INT_RANK[to]) return INT_RANK[to]! >= INT_RANK[from]!;
  if (from === 'FLOAT' && to === 'DOUBLE') return true;
  const dTo = decimal(to);
  if (INT_DIGITS[from] && dTo) return dTo.p - dTo.s >= INT_DIGITS[from]!;
  const dFrom = decimal(from);
  if (dFrom && dTo) return dTo.s >= dFrom.s && dTo.p - dTo.s >= dFrom.p - dFrom.s;
  // numeric widened past DECIMAL(38) is kept as text: DuckDB writes a DECIMAL's text as PostgreSQL does.
  if ((dFrom || INT_DIGITS[from]) && to === 'VARCHAR') return true;
  return false;
}

/** Compares the stored layout with the new one (both already mapped). */
export function planLayoutChange(
  before: { schema: TableSchema; columns: ColumnMapping[] },
  after: { schema: TableSchema; columns: ColumnMapping[] },
  opts: { reset?: boolean } = {},
): LayoutChange {
  const change: LayoutChange = { adds: [], drops: [], renames: [], retypes: [], incompatible: [], rewritten: [], schema: after.schema };
  const matched = new Set<number>();
  const columns: ColumnSchema[] = [];
  after.schema.columns.forEach((a, i) => {
    const am = after.columns[i]!;
    let j = a.attnum !== undefined ? before.schema.columns.findIndex((b) => b.attnum === a.attnum) : -1;
    if (j < 0) j = before.schema.columns.findIndex((b, k) => !matched.has(k) && b.name === a.name && (b.attnum === undefined || a.attnum === undefined));
    if (j < 0) {
      // A default without a missing value: PostgreSQL rewrote the table to fill it, and decodes no row changes for that.
      if (a.hasDefault && a.missing === undefined && !opts.reset) change.rewritten.push(a.name);
      change.adds.push(a.missing !== undefined ? { column: am, missing: a.missing } : { column: am });
      columns.push(a);
      return;
    }
    matched.add(j);
    const b = before.schema.columns[j]!;
    const bm = before.columns[j]!;
    columns.push(a.attnum === undefined && b.attnum !== undefined ? { ...a, attnum: b.attnum } : a);
    const entry = { name: a.name, from: bm.duckType, to: am.duckType };
    if (bm.duckType !== am.duckType && !isWidening(bm.duckType, am.duckType)) {
      if (!opts.reset) change.incompatible.push(entry);
      else {
        // The table is being copied again: the old column goes (history keeps it as <name>__dropped), the new one comes.
        change.drops.push(bm);
        change.adds.push({ column: am });
        return;
      }
    }
    if (b.name !== a.name) change.renames.push({ from: b.name, to: a.name });
    if (bm.duckType !== am.duckType) change.retypes.push(entry);
  });
  before.columns.forEach((bm, j) => {
    if (!matched.has(j)) change.drops.push(bm);
  });
  change.schema = { ...after.schema, columns };
  return change;
}

async function columnNames(conn: DuckDBConnection, table: string): Promise<Set<string>> {
  const r = await conn.runAndReadAll(`SELECT * FROM ${table} LIMIT 0`);
  return new Set(r.columnNames());
}

/**
 * Applies a planned change to the hot current-state and history tables (inside the caller's
 * transaction). The current table follows the source exactly; the history keeps a dropped
 * column's values under `<name>__dropped` (or `<name>__dropped2`, ...) so a later column of the
 * same name starts fresh.
 */
export async function applyLayoutChange(
  conn: DuckDBConnection,
  t: { name: string; current: string; history: string },
  change: LayoutChange,
): Promise<void> {
  if (change.incompatible.length > 0) {
    const what = change.incompatible.map((c) => `${c.name} ${c.from} -> ${c.to}`).join(', ');
    throw new RecopyNeeded(
      [t.name],
      `table ${t.name}: ${what} cannot be converted in place; the table is copied again (see docs/SCHEMA-CHANGES.md)`,
    );
  }
  if (change.rewritten.length > 0) {
    throw new RecopyNeeded(
      [t.name],
      `table ${t.name}: ${change.rewritten.join(', ')} added with a volatile default or as a generated column; PostgreSQL ` +
        'filled it by rewriting the table, which logical decoding does not carry: the table is copied again (see docs/SCHEMA-CHANGES.md)',
    );
  }
  const history = await columnNames(conn, t.history);
  const alter = (table: string, sql: string) => conn.run(`ALTER TABLE ${table} ${sql}`);
  for (const d of change.drops) {
    await alter(t.current, `DROP COLUMN ${quoteIdent(d.name)}`);
    let kept = `${d.name}__dropped`;
    for (let n = 2; history.has(kept); n++) kept = `${d.name}__dropped${n}`;
    await alter(t.history, `RENAME COLUMN ${quoteIdent(d.name)} TO ${quoteIdent(kept)}`);
    history.delete(d.name);
    history.add(kept);
  }
  // Renames through temporary names, so that swaps (a <-> b) work.
  for (const [i, r] of change.renames.entries()) {
    for (const table of [t.current, t.history]) await alter(table, `RENAME COLUMN ${quoteIdent(r.from)} TO ${quoteIdent(`__ducktail_rename_${i}`)}`);
  }
  for (const [i, r] of change.renames.entries()) {
    for (const table of [t.current, t.history]) await alter(table, `RENAME COLUMN ${quoteIdent(`__ducktail_rename_${i}`)} TO ${quoteIdent(r.to)}`);
  }
  for (const r of change.retypes) {
    for (const table of [t.current, t.history]) await alter(table, `ALTER COLUMN ${quoteIdent(r.name)} TYPE ${r.to}`);
  }
  for (const { column: a, missing } of change.adds) {
    for (const table of [t.current, t.history]) await alter(table, `ADD COLUMN ${quoteIdent(a.name)} ${a.duckType}`);
    // Rows that existed before ADD COLUMN ... DEFAULT read the default in PostgreSQL: so in the mirror (not in history).
    if (missing !== undefined) {
      await conn.run(`UPDATE ${t.current} SET ${quoteIdent(a.name)} = ${a.fromText(`'${missing.replaceAll("'", "''")}'`)}`);
    }
  }
}
