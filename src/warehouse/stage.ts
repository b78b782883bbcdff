import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TupleValue, UNCHANGED } from '../change/index.ts';
import { byteaHex, CsvBuffer } from './csv.ts';
import { supersedeArchived, truncateArchived } from './archived.ts';
import { quoteIdent } from './pg-types.ts';
import type { MirrorTable } from './tables.ts';
import { recordUnfit } from './unfit.ts';

/** Milliseconds spent per apply stage, summed over batches (for profiling and /metrics). */
export interface StageTimings {
  collapseMs: number;
  lookupMs: number;
  /** Writing the batch as CSV text and loading it into the staging table (DuckDB's CSV reader). */
  stageMs: number;
  currentMs: number;
  historyMs: number;
  clearMs: number;
  commitMs: number;
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

/** Columns staged as text too: those with values that may not fit their DuckDB type, and then the key's. */
function textColumns(m: MirrorTable): number[] {
  const unfit = m.columns.flatMap((c, i) => (c.unfit ? [i] : []));
  return unfit.length === 0 ? [] : [...new Set([...m.keyIndexes, ...unfit])];
}

/**
 * Per-connection staging of one mirror layout. A batch is written once as CSV text and loaded by
 * DuckDB's CSV reader (one native call instead of one per value) into a staging table typed like
 * the mirror, converting each column once with its mapping's `fromText` (src/warehouse/pg-types.ts);
 * set-based statements then move the typed rows into the mirror and the history.
 */
export class Stage {
  private readonly table: string;
  private readonly keyTable: string;
  private readonly file: string;
  private readonly csv = new CsvBuffer();

  private constructor(
    private readonly conn: DuckDBConnection,
    private readonly mirror: MirrorTable,
    id: string,
    dir: string,
  ) {
    this.table = `temp.main._stage_${id}`;
    this.keyTable = `_stage_k_${id}`;
    this.file = join(dir, `stage-${id}.csv`);
  }

  /** Creates (or replaces) the staging tables of a layout; `dir` holds the batch files. */
  static async create(conn: DuckDBConnection, mirror: MirrorTable, id: string, dir: string): Promise<Stage> {
    // Typed like the mirror: each value is converted from PostgreSQL's text once, while loading. Columns
    // whose values may not fit (and then the key) keep the text of rows with such a value in t<i>, for
    // _ducktail.unfit_values.
    const typed = mirror.columns.map((c, i) => `c${i} ${c.duckType}`).join(', ');
    const text = textColumns(mirror).map((i) => `, t${i} VARCHAR`).join('');
    await conn.run(
      `CREATE OR REPLACE TEMP TABLE _stage_${id} (_flags UTINYINT, _op VARCHAR, _lsn UBIGINT, _seq INTEGER, ` +
        `_commit_us BIGINT, ${typed}${text})`,
    );
    await conn.run(`CREATE OR REPLACE TEMP TABLE _stage_k_${id} (${mirror.columns.map((_, i) => `c${i} VARCHAR`).join(', ')})`);
    return new Stage(conn, mirror, id, dir);
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
      replaces = await this.load(rows);
      unfit = await recordUnfit(this.conn, m, this.table, HISTORY, (i) => `s.t${i}`);
    }
    let t1 = performance.now();
    timings.stageMs += t1 - t0;
    t0 = t1;

    const names = m.columns.map((c) => quoteIdent(c.name)).join(', ');
    const values = m.columns.map((_, i) => `s.c${i}`).join(', ');
    if (truncate) {
      await this.conn.run(`DELETE FROM ${m.current}`);
      await truncateArchived(this.conn, m, lastLsn);
    }
    if (rows.length === 0) return 0;
    if (replaces && !truncate) {
      const on = m.keyIndexes
        .map((i) => `${m.current}.${quoteIdent(m.columns[i]!.name)} = s.c${i}`)
        .join(' AND ');
      const replaced = `(SELECT * FROM ${this.table} WHERE _flags & ${FINAL | REPLACES} = ${FINAL | REPLACES})`;
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
        `SELECT ${values}, s._op, s._lsn, s._seq, make_timestamptz(s._commit_us) FROM ${this.table} s ` +
        `WHERE s._flags & ${HISTORY} <> 0`,
    );
    t1 = performance.now();
    timings.historyMs += t1 - t0;
    t0 = t1;
    await this.conn.run(`DELETE FROM ${this.table}`);
    timings.clearMs += performance.now() - t0;
    return unfit;
  }

  /** Writes the rows as CSV and loads them into the staging table; true when some final row replaces a key. */
  private async load(rows: StagedRow[]): Promise<boolean> {
    const n = this.mirror.columns.length;
    const csv = this.csv;
    csv.reset();
    let replaces = false;
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
      csv.ascii(`${flags}\t${s.op}\t`);
      csv.bigint(s.lsn);
      csv.tab();
      csv.ascii(String(s.seq));
      csv.tab();
      csv.bigint(s.commitTimeUs);
      for (let i = 0; i < n; i++) {
        csv.tab();
        csv.field(s.row[i]);
      }
      csv.newline();
    }
    // Overwritten by the next batch; the folder is removed when the warehouse closes.
    writeFileSync(this.file, csv.bytes());
    const columns = [
      `'_flags': 'UTINYINT'`,
      `'_op': 'VARCHAR'`,
      `'_lsn': 'UBIGINT'`,
      `'_seq': 'INTEGER'`,
      `'_commit_us': 'BIGINT'`,
      ...this.mirror.columns.map((_, i) => `'c${i}': 'VARCHAR'`),
    ].join(', ');
    const path = this.file.replaceAll("'", "''");
    const casts = this.mirror.columns.map((c, i) => c.fromText(`c${i}`)).join(', ');
    // Only rows with an unfit value keep text (NULL otherwise: next to nothing to store).
    const m = this.mirror;
    const anyUnfit = m.columns.flatMap((c, i) => (c.unfit ? [`(c${i} IS NOT NULL AND ${c.unfit(`c${i}`)})`] : [])).join(' OR ');
    const text = textColumns(m).map((i) => `, CASE WHEN ${anyUnfit} THEN c${i} END`).join('');
    await this.conn.run(
      `INSERT INTO ${this.table} SELECT _flags, _op, _lsn, _seq, _commit_us, ${casts}${text} FROM read_csv('${path}', delim = '\t', quote = '"', escape = '"', ` +
        `header = false, auto_detect = false, nullstr = '\\N', allow_quoted_nulls = false, strict_mode = true, ` +
        `columns = {${columns}})`,
    );
    return replaces;
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
