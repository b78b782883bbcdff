import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { type TupleValue, UNCHANGED } from '../change/index.ts';
import { byteaHex } from './csv.ts';
import { ColumnWriter, kindOf, META_COLUMNS, type Source, typedColumnType } from './columns.ts';
import { supersedeArchived, truncateArchived } from './archived.ts';
import { materialize } from './lazy-copy.ts';
import { quoteIdent } from './pg-types.ts';
import { HOT_SCHEMA, historyName, type MirrorTable } from './tables.ts';
import { recordUnfit } from './unfit.ts';

/** Milliseconds spent per apply stage, summed over batches (for profiling and /metrics). */
export interface StageTimings {
  collapseMs: number;
  lookupMs: number;
  /** Parsing the batch into typed column buffers and appending them to the staging table (general path). */
  stageMs: number;
  /** Mirror and history: the INSERTs from the staging table, or the direct appends of fresh inserts. */
  currentMs: number;
  historyMs: number;
  clearMs: number;
  /** BEGIN TRANSACTION: waiting for its round trip to DuckDB's thread and back. */
  beginMs: number;
  commitMs: number;
  /** Batches (per table) of fresh inserts appended straight to the mirror and history (a count, not ms). */
  directAppends: number;
  /** Batches (per table) that joined their replaced keys with the current table to store copied rows' `R` rows (a count). */
  copyJoins: number;
}

/**
 * One staged row: a change's full row image (TOAST already filled) and what it does. Every change
 * is staged once; the mirror and the history are both filled from the same staging table.
 */
export interface StagedRow {
  op: string;
  lsn: bigint;
  seq: number;
  commitTimeUs: bigint;
  row: readonly TupleValue[];
  /** Goes to the history table (false for the old key of a key-changing update). */
  history: boolean;
  /** The key's final state in this batch. */
  final: boolean;
  /** The final state is "no row" (deleted, or the old key of a key change). */
  deleted: boolean;
  /** The key may already be in the mirror: delete its current row first (false for keys first inserted here). */
  replaces: boolean;
}

const HISTORY = 1;
const FINAL = 2;
const DELETED = 4;
const REPLACES = 8;

function appendText(ap: DuckDBAppender, v: TupleValue | undefined): void {
  if (v === null || v === undefined) return ap.appendNull();
  if (v === UNCHANGED) throw new Error('internal: unchanged TOAST value in a key');
  ap.appendVarchar(typeof v === 'string' ? v : byteaHex(v));
}

export class Stage {
  private readonly table: string;
  private readonly keyTable: string;
  /** Columns whose values may not fit their DuckDB type, and the key columns (kept as text for those rows). */
  private readonly watch: number[];
  private readonly keep: number[];
  private readonly stageSources: Source[];
  /** How fresh inserts are appended straight to the mirror and the history (null = never: through staging). */
  private direct: { mirror: Source[]; history: Source[] } | null | undefined;

  private constructor(
    private readonly conn: DuckDBConnection,
    private readonly mirror: MirrorTable,
    private readonly id: string,
    private readonly writer: ColumnWriter,
    /** Tables that may still have copied rows with positions (CopyShared.copied): only those need `materialize`. */
    private readonly copied: ReadonlySet<string>,
  ) {
    this.table = `temp.main._stage_${id}`;
    this.keyTable = `_stage_k_${id}`;
    this.watch = mirror.columns.flatMap((c, i) => (c.unfit ? [i] : []));
    this.keep = this.watch.length > 0 ? mirror.keyIndexes : [];
    this.stageSources = ['flags', 'op', 'lsn', 'seq', 'commit'];
    writer.kinds.forEach((k, i) => {
      // A key without a parser still has a typed column (filled by SQL when a replaced key needs it).
      if (k !== 'text') this.stageSources.push({ col: i });
      else if (mirror.keyIndexes.includes(i)) this.stageSources.push('null');
      if (k !== 'str') this.stageSources.push({ twin: i });
    });
  }

  /** Creates (or replaces) the staging tables of a layout. */
  static async create(conn: DuckDBConnection, mirror: MirrorTable, id: string, copied: ReadonlySet<string>): Promise<Stage> {
    // Per column a typed c<i> (unless the type has no parser and is no key) and a text twin x<i> (unless
    // it is text itself) for the values the parser refuses, converted by SQL when moved.
    const kinds = mirror.columns.map(kindOf);
    const keys = new Set(mirror.keyIndexes);
    const cols = mirror.columns.flatMap((c, i) => [
      ...(kinds[i] === 'text' && !keys.has(i) ? [] : [`c${i} ${typedColumnType(kinds[i]!, c.duckType)}`]),
      ...(kinds[i] === 'str' ? [] : [`x${i} VARCHAR`]),
    ]);
    await conn.run(`CREATE OR REPLACE TEMP TABLE _stage_${id} (${META_COLUMNS}, ${cols.join(', ')})`);
    await conn.run(`CREATE OR REPLACE TEMP TABLE _stage_k_${id} (${mirror.columns.map((_, i) => `c${i} VARCHAR`).join(', ')})`);
    const writer = await ColumnWriter.create(kinds, mirror.columns.map((c) => c.duckType));
    return new Stage(conn, mirror, id, writer, copied);
  }

  /** SQL of column i's value in the staging row `s`, given whether some value of the batch went to its text twin. */
  private value(i: number): string {
    const kind = this.writer.kinds[i]!;
    const c = this.mirror.columns[i]!;
    if (kind === 'str') return `s.c${i}`;
    if (kind === 'text') return c.fromText(`s.x${i}`);
    return this.writer.textUsed(i) ? `COALESCE(s.c${i}, ${c.fromText(`s.x${i}`)})` : `s.c${i}`;
  }

  /** SQL of column i's PostgreSQL text in `s`, where `_ducktail.unfit_values` needs it (unfit columns, keys). */
  private text(i: number): string {
    return this.writer.kinds[i] === 'str' ? `s.c${i}` : `s.x${i}`;
  }

  /**
   * Moves staged rows into the mirror and history tables; `truncate` empties the mirror first.
   * Returns how many values did not fit their column (kept in `_ducktail.unfit_values`).
   */
  async apply(rows: StagedRow[], truncate: boolean, lastLsn: bigint, timings: StageTimings): Promise<number> {
    const m = this.mirror;
    let t0 = performance.now();
    let replaces = false;
    let unfit = 0;
    if (rows.length > 0) {
      replaces = this.parse(rows);
      if (!truncate && !replaces && (await this.appendFresh(rows, timings, t0))) return 0;
      await this.append(`_stage_${this.id}`, 'temp', 'main', this.stageSources);
      // Only values the parser refused can be unfit.
      if (this.watch.some((i) => this.writer.textUsed(i))) unfit = await recordUnfit(this.conn, m, this.table, HISTORY, (i) => this.text(i));
    }
    let t1 = performance.now();
    timings.stageMs += t1 - t0;
    t0 = t1;

    const names = m.columns.map((c) => quoteIdent(c.name)).join(', ');
    const values = m.columns.map((_, i) => this.value(i)).join(', ');
    // Once the backfill stored every copied row's `R` row, no row has a position left: nothing to store.
    const copied = m.lazyCopy && this.copied.has(m.name);
    if (truncate) {
      // The copied rows' `R` rows are stored before the table is emptied (lazy-copy.ts).
      if (copied) await materialize(this.conn, m);
      await this.conn.run(`DELETE FROM ${m.current}`);
      await truncateArchived(this.conn, m, lastLsn);
    }
    if (rows.length === 0) return 0;
    if (replaces && !truncate) {
      // archived.ts reads the staged keys typed, in c<i>: convert those the parser left as text.
      const fill = m.keyIndexes.filter((i) => this.writer.kinds[i] === 'text' || this.writer.textUsed(i));
      if (fill.length > 0) {
        await this.conn.run(
          `UPDATE ${this.table} SET ${fill.map((i) => `c${i} = COALESCE(c${i}, ${m.columns[i]!.fromText(`x${i}`)})`).join(', ')} ` +
            `WHERE ${fill.map((i) => `x${i} IS NOT NULL`).join(' OR ')}`,
        );
      }
      const on = m.keyIndexes
        .map((i) => `${m.current}.${quoteIdent(m.columns[i]!.name)} = ${this.value(i)}`)
        .join(' AND ');
      const replaced = `(SELECT * FROM ${this.table} WHERE _flags & ${FINAL | REPLACES} = ${FINAL | REPLACES})`;
      // A replaced or deleted copied row's `R` row is stored before the row goes (lazy-copy.ts).
      const onT = m.keyIndexes.map((i) => `t.${quoteIdent(m.columns[i]!.name)} = ${this.value(i)}`).join(' AND ');
      if (copied) {
        await materialize(this.conn, m, { join: `SEMI JOIN ${replaced} s ON ${onT}` });
        timings.copyJoins++;
      }
      await this.conn.run(`DELETE FROM ${m.current} USING ${replaced} s WHERE ${on}`);
      await supersedeArchived(this.conn, m, replaced, lastLsn, true, this.table);
    }
    await this.conn.run(
      `INSERT INTO ${m.current} (${names}) SELECT ${values} FROM ${this.table} s WHERE s._flags & ${FINAL | DELETED} = ${FINAL}`,
    );
    t1 = performance.now();
    timings.currentMs += t1 - t0;
    t0 = t1;
    await this.conn.run(
      `INSERT INTO ${m.history} (${names}, _op, _lsn, _seq, _commit_ts) ` +
        `SELECT ${values}, chr(s._op), s._lsn, s._seq, make_timestamptz(s._commit_us) FROM ${this.table} s ` +
        `WHERE s._flags & ${HISTORY} <> 0`,
    );
    t1 = performance.now();
    timings.historyMs += t1 - t0;
    t0 = t1;
    await this.conn.run(`DELETE FROM ${this.table}`);
    timings.clearMs += performance.now() - t0;
    return unfit;
  }

  /** Parses the rows into the column buffers; true when some final row replaces a key. */
  private parse(rows: StagedRow[]): boolean {
    const w = this.writer;
    let replaces = false;
    w.begin(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const s = rows[r]!;
      let flags = 0;
      if (s.history) flags |= HISTORY;
      if (s.final) flags |= FINAL;
      if (s.deleted) flags |= DELETED;
      if (s.final && s.replaces) {
        flags |= REPLACES;
        replaces = true;
      }
      w.row({ flags, op: s.op, lsn: s.lsn, seq: s.seq, commitTimeUs: s.commitTimeUs }, s.row, this.watch, this.keep);
    }
    return replaces;
  }

  /** Appends the parsed rows to a table through an appender (inside the apply's transaction). */
  private async append(table: string, catalog: string | undefined, schema: string, sources: Source[]): Promise<void> {
    const ap = await this.conn.createAppender(table, schema, catalog);
    try {
      this.writer.appendTo(ap, sources);
    } finally {
      ap.closeSync();
    }
  }

  /**
   * Fresh inserts (keys first inserted here, nothing deleted, every value parsed): appended straight
   * to the mirror and the history, no staging table, no INSERT ... SELECT. False when the batch is not so.
   */
  private async appendFresh(rows: StagedRow[], timings: StageTimings, started: number): Promise<boolean> {
    const w = this.writer;
    if (w.kinds.some((k, i) => k === 'text' || w.textUsed(i))) return false;
    if (!rows.every((r) => r.history && r.final && !r.deleted)) return false;
    const direct = await this.directSources();
    if (!direct) return false;
    const m = this.mirror;
    let t0 = performance.now();
    timings.stageMs += t0 - started;
    await this.append(m.name, undefined, HOT_SCHEMA, direct.mirror);
    const t1 = performance.now();
    timings.currentMs += t1 - t0;
    t0 = t1;
    await this.append(this.historyTable, undefined, HOT_SCHEMA, direct.history);
    timings.historyMs += performance.now() - t0;
    timings.directAppends++;
    return true;
  }

  private get historyTable(): string {
    return `history.${historyName(this.mirror.schema.schema, this.mirror.schema.table)}`;
  }

  /**
   * The sources of the mirror's and the history's columns, in their physical order (ALTERs move
   * columns; history keeps dropped ones); null when some column has a default, a type that does not
   * store what the parser writes, or no source.
   */
  private async directSources(): Promise<{ mirror: Source[]; history: Source[] } | null> {
    if (this.direct !== undefined) return this.direct;
    const m = this.mirror;
    const byName = new Map(m.columns.map((c, i) => [c.name, i]));
    const meta: Record<string, Source> = { _op: 'opText', _lsn: 'lsn', _seq: 'seq', _commit_ts: 'commit' };
    const sourcesOf = async (table: string, history: boolean): Promise<Source[] | null> => {
      const r = await this.conn.runAndReadAll(
        'SELECT column_name, column_default FROM duckdb_columns() WHERE database_name = current_database() ' +
          'AND schema_name = $1 AND table_name = $2 ORDER BY column_index',
        [HOT_SCHEMA, table],
      );
      const cols = r.getRows() as [string, string | null][];
      const out: Source[] = [];
      for (const [name, dflt] of cols) {
        const i = byName.get(name);
        if (i !== undefined) out.push({ col: i });
        else if (history && meta[name]) out.push(meta[name]!);
        else if (dflt === null) out.push('null');
        else return null;
      }
      const covered = new Set(out.flatMap((s) => (typeof s === 'object' && 'col' in s ? [s.col] : [])));
      if (covered.size !== m.columns.length || (history && out.filter((s) => typeof s === 'string' && s !== 'null').length !== 4)) return null;
      const ap = await this.conn.createAppender(table, HOT_SCHEMA);
      try {
        return this.writer.check(ap, out);
      } finally {
        ap.closeSync();
      }
    };
    const mirror = await sourcesOf(m.name, false);
    const history = mirror && (await sourcesOf(this.historyTable, true));
    this.direct = mirror && history ? { mirror, history } : null;
    return this.direct;
  }

  /** Current rows of the given keys as PostgreSQL text, keyed like the applier keys them. */
  async lookup(keys: TupleValue[][], keyOf: (row: readonly TupleValue[]) => string): Promise<Map<string, string[]>> {
    const m = this.mirror;
    const out = new Map<string, string[]>();
    if (keys.length === 0) return out;
    const f = await this.conn.createAppender(this.keyTable, 'main', 'temp');
    for (const k of keys) {
      for (let i = 0; i < m.columns.length; i++) appendText(f, k[i] ?? null);
      f.endRow();
    }
    f.flushSync();
    f.closeSync();
    const on = m.keyIndexes
      .map((i) => `t.${quoteIdent(m.columns[i]!.name)} = ${m.columns[i]!.fromText(`s.c${i}`)}`)
      .join(' AND ');
    // The staged key text is selected too, so the result is keyed exactly as the caller keyed it.
    const select = m.columns.map((c) => c.toText(`t.${quoteIdent(c.name)}`)).join(', ');
    const stagedKey = m.columns.map((_, i) => `s.c${i}`).join(', ');
    const n = m.columns.length;
    // Hot rows first; keys not found there are looked up in the public view, whose archived rows
    // (tiering's Parquet files) are then the base of their unchanged TOAST values.
    for (const from of [m.current, m.currentView]) {
      const reader = await this.conn.runAndReadAll(`SELECT ${select}, ${stagedKey} FROM ${from} t JOIN temp.main.${this.keyTable} s ON ${on}`);
      for (const row of reader.getRows() as (string | null)[][]) {
        out.set(keyOf(row.slice(n)), row.slice(0, n) as string[]);
      }
      if (out.size >= keys.length) break;
    }
    await this.conn.run(`DELETE FROM temp.main.${this.keyTable}`);
    return out;
  }
}
