import type { DuckDBConnection } from '@duckdb/node-api';
import type { TableSchema } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { type ColumnMapping, mapColumn, quoteIdent } from './pg-types.ts';
import { clearCopied, excludeHidden, hasHiddenColumns, HIDDEN_DEFS, hotHistorySql, materialize } from './lazy-copy.ts';
import { applyLayoutChange, planLayoutChange } from './schema-change.ts';
import { timeTravelSql } from './time-travel.ts';

/** Where one source table lives in DuckDB and how its columns map. */
export interface MirrorTable {
  name: string;
  schema: TableSchema;
  columns: ColumnMapping[];
  /** Indexes into `columns` of the key (replica identity) columns. */
  keyIndexes: number[];
  /** Quoted hot current-state table the applier writes, e.g. "_hot"."public.orders". */
  current: string;
  /** Quoted hot change-history table the applier writes, e.g. "_hot"."history.orders". */
  history: string;
  /** Quoted public view of the current state over every tier, e.g. "public"."orders". */
  currentView: string;
  /** Quoted public view of the history over every tier, e.g. "history"."orders". */
  historyView: string;
  /**
   * The hot current table has the hidden copy columns (lazy-copy.ts): the initial copy's `R` rows are derived
   * from it until a writer step stores them. False for tables created before they existed.
   */
  lazyCopy: boolean;
}

/** Schema of the hot tables: the public names are views that tiering extends with Parquet files. */
export const HOT_SCHEMA = '_hot';

/** History table name: `history.<table>` for public, `history.<schema>__<table>` otherwise. */
export function historyName(schema: string, table: string): string {
  return schema === 'public' ? table : `${schema}__${table}`;
}

/** Builds the mapping of a source table, refusing tables without a key. */
export function describeMirror(schema: TableSchema): MirrorTable {
  const name = `${schema.schema}.${schema.table}`;
  const keyIndexes = schema.columns.flatMap((c, i) => (c.key ? [i] : []));
  if (keyIndexes.length === 0) {
    throw new AppError(
      'TABLE_WITHOUT_KEY',
      `table ${name} has no primary key or replica identity: add a primary key ` +
        `(ALTER TABLE ${name} ADD PRIMARY KEY (...)) or set REPLICA IDENTITY FULL`,
    );
  }
  return {
    name,
    schema,
    columns: schema.columns.map(mapColumn),
    keyIndexes,
    current: `${HOT_SCHEMA}.${quoteIdent(name)}`,
    history: `${HOT_SCHEMA}.${quoteIdent(`history.${historyName(schema.schema, schema.table)}`)}`,
    currentView: `${quoteIdent(schema.schema)}.${quoteIdent(schema.table)}`,
    historyView: `history.${quoteIdent(historyName(schema.schema, schema.table))}`,
    lazyCopy: false,
  };
}

function sameLayout(a: TableSchema, b: TableSchema): boolean {
  return (
    a.columns.length === b.columns.length &&
    a.columns.every((c, i) => {
      const d = b.columns[i]!;
      return c.name === d.name && c.typeOid === d.typeOid && c.typeMod === d.typeMod && c.key === d.key && c.userType === d.userType;
    })
  );
}

/** Creates and evolves mirror and history tables; caches what it has verified. */
export class MirrorCatalog {
  private readonly known = new Map<string, MirrorTable>();
  /** "table.column" already warned about (a type stored as text for want of an exact DuckDB type). */
  private readonly warned = new Set<string>();
  /** Called in the apply transaction after a table's layout changed (tiering rewrites its views over archived files). */
  onLayoutChange: ((conn: DuckDBConnection, m: MirrorTable) => Promise<void>) | null = null;

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /** All tables mirrored so far (from DuckDB at first call). */
  async load(): Promise<MirrorTable[]> {
    const reader = await this.conn.runAndReadAll('SELECT name, columns::VARCHAR FROM _ducktail.tables');
    const lazy = await this.conn.runAndReadAll(
      `SELECT table_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = '${HOT_SCHEMA}' AND column_name = '_ducktail_copy_seq'`,
    );
    const withHidden = new Set((lazy.getRows() as [string][]).map(([t]) => t));
    for (const [name, columns] of reader.getRows() as [string, string][]) {
      const [schema, table] = splitName(name);
      const m = describeMirror({ schema, table, columns: JSON.parse(columns) });
      m.lazyCopy = withHidden.has(name);
      this.known.set(name, m);
    }
    await this.migrateToHot();
    return [...this.known.values()];
  }

  /** The tables known so far (no database access). */
  list(): MirrorTable[] {
    return [...this.known.values()];
  }

  get(name: string): MirrorTable | undefined {
    return this.known.get(name);
  }

  /** Makes sure DuckDB has tables matching `schema`; runs inside the caller's transaction. */
  async ensure(schema: TableSchema, opts: { reset?: boolean } = {}): Promise<MirrorTable> {
    const name = `${schema.schema}.${schema.table}`;
    const previous = this.known.get(name) ?? (await this.stored(name));
    if (previous && sameLayout(previous.schema, schema)) {
      this.known.set(name, previous);
      return previous;
    }
    const next = describeMirror(schema);
    next.lazyCopy = previous ? previous.lazyCopy : true;
    for (const c of next.columns) {
      const id = `${name}.${c.name}`;
      if (c.fallback && !this.warned.has(id)) {
        this.warned.add(id);
        this.warn(`column ${id}: ${c.fallback}`);
      }
    }
    let stored = schema;
    if (!previous) await this.create(next);
    else {
      // The copied rows' `R` rows are stored as of the old layout, as they would have been with the copy
      // (a dropped column's values kept, an added one NULL), and derived no more (lazy-copy.ts).
      const kept = await materialize(this.conn, previous);
      stored = await this.evolve(previous, next, opts.reset === true);
      next.schema = stored;
      if (kept > 0) await clearCopied(this.conn, next);
    }
    const columnsJson = JSON.stringify(stored.columns);
    await this.conn.run('DELETE FROM _ducktail.tables WHERE name = $1', [name]);
    await this.conn.run('INSERT INTO _ducktail.tables VALUES ($1, $2::JSON, now(), now())', [name, columnsJson]);
    this.known.set(name, next);
    if (previous) await this.onLayoutChange?.(this.conn, next);
    return next;
  }

  /** The table's mirror when its layout is known and equal to `schema`, without asking the database (else undefined). */
  cached(schema: TableSchema): MirrorTable | undefined {
    const known = this.known.get(`${schema.schema}.${schema.table}`);
    return known && sameLayout(known.schema, schema) ? known : undefined;
  }

  /** The layout stored for a table (after reset() the cache is empty, the tables are not). */
  private async stored(name: string): Promise<MirrorTable | undefined> {
    const reader = await this.conn.runAndReadAll('SELECT columns::VARCHAR FROM _ducktail.tables WHERE name = $1', [name]);
    const row = reader.getRows()[0] as [string] | undefined;
    if (!row) return undefined;
    const [schema, table] = splitName(name);
    const m = describeMirror({ schema, table, columns: JSON.parse(row[0]) });
    m.lazyCopy = await hasHiddenColumns(this.conn, HOT_SCHEMA, name);
    return m;
  }

  /** Forgets cached layouts, e.g. after a rolled-back transaction. */
  reset(): void {
    this.known.clear();
  }

  private async create(t: MirrorTable): Promise<void> {
    const cols = t.columns.map((c) => `${quoteIdent(c.name)} ${c.duckType}`).join(', ');
    await this.conn.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.schema.schema)}`);
    await this.conn.run(`CREATE SCHEMA IF NOT EXISTS ${HOT_SCHEMA}`);
    await this.conn.run(`CREATE TABLE IF NOT EXISTS ${t.current} (${cols}${t.lazyCopy ? `, ${HIDDEN_DEFS}` : ''})`);
    // A hot table that was already there (kept from before) decides, not the wish.
    if (t.lazyCopy) t.lazyCopy = await hasHiddenColumns(this.conn, HOT_SCHEMA, t.name);
    await this.conn.run(
      `CREATE TABLE IF NOT EXISTS ${t.history} (${cols}, _op VARCHAR NOT NULL, _lsn UBIGINT NOT NULL, ` +
        `_seq INTEGER NOT NULL, _commit_ts TIMESTAMPTZ)`,
    );
    await this.createViews(t);
  }

  /** Public views over the hot tables; never replaces a view tiering has extended with files. */
  private async createViews(t: MirrorTable): Promise<void> {
    await this.conn.run(`CREATE VIEW IF NOT EXISTS ${t.currentView} AS SELECT *${excludeHidden(t)} FROM ${t.current}`);
    await this.conn.run(`CREATE VIEW IF NOT EXISTS ${t.historyView} AS ${hotHistorySql(t)}`);
    for (const macro of timeTravelSql(t)) await this.conn.run(macro);
  }

  /** Databases written before the hot schema existed kept the tables under the public names: move them. */
  private async migrateToHot(): Promise<void> {
    const r = await this.conn.runAndReadAll(
      "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = current_database()",
    );
    const tables = new Set((r.getRows() as [string][]).map(([n]) => n));
    for (const t of this.known.values()) {
      const [schema, table] = splitName(t.name);
      const pairs: [string, string, string][] = [
        [`${schema}.${table}`, t.currentView, t.current],
        [`history.${historyName(schema, table)}`, t.historyView, t.history],
      ];
      const moved = pairs.filter(([plain]) => tables.has(plain));
      if (moved.length === 0) continue;
      for (const [, old, hot] of moved) {
        await this.conn.run('BEGIN TRANSACTION');
        await this.conn.run(`CREATE SCHEMA IF NOT EXISTS ${HOT_SCHEMA}`);
        await this.conn.run(`CREATE TABLE ${hot} AS SELECT * FROM ${old}`);
        await this.conn.run(`DROP TABLE ${old}`);
        await this.conn.run('COMMIT');
      }
      await this.createViews(t);
    }
  }

  /** Applies ADD/DROP/RENAME COLUMN and widenings in place (schema-change.ts); returns the layout to store. */
  private async evolve(before: MirrorTable, after: MirrorTable, reset: boolean): Promise<TableSchema> {
    const change = planLayoutChange(before, after, { reset });
    await applyLayoutChange(this.conn, after, change);
    return change.schema;
  }
}

/** Splits "schema.table" into its two parts. */
export function splitName(name: string): [string, string] {
  const dot = name.indexOf('.');
  if (dot <= 0) throw new AppError('BAD_TABLE_NAME', `table name "${name}" must be "schema.table"`);
  return [name.slice(0, dot), name.slice(dot + 1)];
}
