import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { type TupleValue, UNCHANGED } from '../change/index.ts';
import { supersedeArchived, truncateArchived } from './archived.ts';
import { quoteIdent } from './pg-types.ts';
import type { MirrorTable } from './tables.ts';

/** One history row to stage: the change and its full row image (TOAST already filled). */
export interface HistoryRow {
  op: string;
  lsn: bigint;
  seq: number;
  commitTimeUs: bigint;
  row: readonly TupleValue[];
}

/** One final state to stage: the row image, or null for "this key is deleted". */
export interface FinalRow {
  row: readonly TupleValue[];
  deleted: boolean;
}

/** Milliseconds spent per apply stage, summed over batches (for profiling and /metrics). */
export interface StageTimings {
  collapseMs: number;
  lookupMs: number;
  appendMs: number;
  currentMs: number;
  historyMs: number;
  clearMs: number;
  commitMs: number;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function appendText(ap: DuckDBAppender, v: TupleValue | undefined): void {
  if (v === null || v === undefined) ap.appendNull();
  else if (typeof v === 'string') ap.appendVarchar(v);
  else if (v === UNCHANGED) throw new Error('internal: unchanged TOAST value reached staging unfilled');
  else {
    // A binary-format value (not requested by ducktail, but valid protocol): stage as bytea hex text.
    let s = '\\x';
    for (const b of v) s += HEX[b];
    ap.appendVarchar(s);
  }
}

/**
 * Per-connection VARCHAR staging tables for one mirror layout: rows are appended with DuckDB's
 * appender (fast, inside the caller's transaction), then moved with one set-based statement each.
 */
export class Stage {
  readonly finalTable: string;
  readonly historyTable: string;

  private constructor(
    private readonly conn: DuckDBConnection,
    private readonly mirror: MirrorTable,
    private readonly id: string,
  ) {
    this.finalTable = `_stage_f_${id}`;
    this.historyTable = `_stage_h_${id}`;
  }

  /** Creates (or replaces) the staging tables of a layout. */
  static async create(conn: DuckDBConnection, mirror: MirrorTable, id: string): Promise<Stage> {
    const cols = mirror.columns.map((_, i) => `c${i} VARCHAR`).join(', ');
    await conn.run(`CREATE OR REPLACE TEMP TABLE _stage_f_${id} (_del BOOLEAN, ${cols})`);
    await conn.run(
      `CREATE OR REPLACE TEMP TABLE _stage_h_${id} (_op VARCHAR, _lsn UBIGINT, _seq INTEGER, _commit_us BIGINT, ${cols})`,
    );
    return new Stage(conn, mirror, id);
  }

  /** Moves staged rows into the mirror and history tables; `truncate` empties the mirror first. */
  async apply(
    finals: Iterable<FinalRow>,
    history: HistoryRow[],
    truncate: boolean,
    insertOnly: boolean,
    timings: StageTimings,
  ): Promise<void> {
    const n = this.mirror.columns.length;
    let t0 = performance.now();
    const f = await this.conn.createAppender(this.finalTable, 'main', 'temp');
    let finalCount = 0;
    for (const fr of finals) {
      f.appendBoolean(fr.deleted);
      for (let i = 0; i < n; i++) appendText(f, fr.row[i]);
      f.endRow();
      finalCount++;
    }
    f.flushSync();
    f.closeSync();
    const h = await this.conn.createAppender(this.historyTable, 'main', 'temp');
    for (const hr of history) {
      h.appendVarchar(hr.op);
      h.appendUBigInt(hr.lsn);
      h.appendInteger(hr.seq);
      h.appendBigInt(hr.commitTimeUs);
      for (let i = 0; i < n; i++) appendText(h, hr.row[i]);
      h.endRow();
    }
    h.flushSync();
    h.closeSync();
    let t1 = performance.now();
    timings.appendMs += t1 - t0;
    t0 = t1;

    const m = this.mirror;
    const names = m.columns.map((c) => quoteIdent(c.name)).join(', ');
    const casts = m.columns.map((c, i) => c.fromText(`s.c${i}`)).join(', ');
    const stageF = `temp.main.${this.finalTable}`;
    const lastLsn = history.reduce((a, h) => (h.lsn > a ? h.lsn : a), 0n);
    if (truncate) {
      await this.conn.run(`DELETE FROM ${m.current}`);
      await truncateArchived(this.conn, m, lastLsn);
    }
    if (finalCount > 0) {
      if (!truncate && !insertOnly) {
        const on = m.keyIndexes
          .map((i) => `${m.current}.${quoteIdent(m.columns[i]!.name)} = ${m.columns[i]!.fromText(`s.c${i}`)}`)
          .join(' AND ');
        await this.conn.run(`DELETE FROM ${m.current} USING ${stageF} s WHERE ${on}`);
        await supersedeArchived(this.conn, m, stageF, lastLsn);
      }
      await this.conn.run(`INSERT INTO ${m.current} (${names}) SELECT ${casts} FROM ${stageF} s WHERE NOT s._del`);
    }
    t1 = performance.now();
    timings.currentMs += t1 - t0;
    t0 = t1;
    if (history.length > 0) {
      await this.conn.run(
        `INSERT INTO ${m.history} (${names}, _op, _lsn, _seq, _commit_ts) ` +
          `SELECT ${casts}, s._op, s._lsn, s._seq, make_timestamptz(s._commit_us) FROM temp.main.${this.historyTable} s`,
      );
    }
    t1 = performance.now();
    timings.historyMs += t1 - t0;
    t0 = t1;
    await this.conn.run(`DELETE FROM ${stageF}`);
    await this.conn.run(`DELETE FROM temp.main.${this.historyTable}`);
    timings.clearMs += performance.now() - t0;
  }

  /** Current rows of the given keys as PostgreSQL text, keyed like the applier keys them. */
  async lookup(keys: TupleValue[][], keyOf: (row: readonly TupleValue[]) => string): Promise<Map<string, string[]>> {
    const m = this.mirror;
    const out = new Map<string, string[]>();
    if (keys.length === 0) return out;
    const f = await this.conn.createAppender(this.finalTable, 'main', 'temp');
    for (const k of keys) {
      f.appendBoolean(false);
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
    const reader = await this.conn.runAndReadAll(
      `SELECT ${select}, ${stagedKey} FROM ${m.current} t JOIN temp.main.${this.finalTable} s ON ${on}`,
    );
    const n = m.columns.length;
    for (const row of reader.getRows() as (string | null)[][]) {
      out.set(keyOf(row.slice(n)), row.slice(0, n) as string[]);
    }
    await this.conn.run(`DELETE FROM temp.main.${this.finalTable}`);
    return out;
  }
}
