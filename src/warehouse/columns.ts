/**
 * Typed staging: a batch's PostgreSQL text values parsed in JavaScript into column buffers
 * (column-buffer.ts) and appended to DuckDB as data chunks (one native copy per column and 2,048 rows;
 * one call per value only for text), instead of CSV text that DuckDB parses and casts. The same parsed
 * batch can go to a staging table (general path: SQL moves it) or straight into the mirror and history
 * tables (fresh inserts). A value the parsers refuse goes to the column's text twin `x<i>` and is
 * converted by the mapping's SQL `fromText`: every value stays exactly what that CAST gives.
 */
import type { DuckDBAppender, DuckDBDataChunk, DuckDBType } from '@duckdb/node-api';
import type { TupleValue } from '../change/index.ts';
import { type Bindings, Column, type Kind, STRING_T } from './column-buffer.ts';
import { loadBindings, loadDuckDb } from './duckdb-native.ts';

export { kindOf, typedColumnType, type Kind } from './column-buffer.ts';

/** Bookkeeping of a staged row: its flags, op, position and commit time. */
export interface RowMeta {
  flags: number;
  op: string;
  lsn: bigint;
  seq: number;
  commitTimeUs: bigint;
}

/** The bookkeeping columns every staging table starts with, in this order. */
export const META_COLUMNS = '_flags UTINYINT, _op UTINYINT, _lsn UBIGINT, _seq INTEGER, _commit_us BIGINT';

/**
 * What fills one column of an appended table: column i's typed (or text) value, its text twin, a
 * bookkeeping field (`opText` = the op as VARCHAR, `commit` also fits a TIMESTAMPTZ), or NULL.
 */
export type Source = { col: number } | { twin: number } | 'flags' | 'op' | 'opText' | 'lsn' | 'seq' | 'commit' | 'null';

const META_WIDTH = { flags: 1, op: 1, lsn: 8, seq: 4, commit: 8 } as const;

export class ColumnWriter {
  private readonly cols: Column[];
  private capacity = 0;
  private flags = new Uint8Array(0);
  private ops = new Uint8Array(0);
  private lsns = new BigUint64Array(0);
  private seqs = new Int32Array(0);
  private commits = new BigInt64Array(0);
  /** The op as an inline one-byte VARCHAR `string_t` per row (column-buffer.ts `inlineAscii`). */
  private opTexts = new Uint8Array(0);
  private rows = 0;
  private readonly chunkRows: number;

  private constructor(
    private readonly b: Bindings,
    private readonly chunkOf: (types: DuckDBType[]) => DuckDBDataChunk,
    readonly kinds: Kind[],
    duckTypes: string[],
  ) {
    this.cols = kinds.map((k, i) => new Column(k, duckTypes[i]!));
    this.chunkRows = b.vector_size();
  }

  static async create(kinds: Kind[], duckTypes: string[]): Promise<ColumnWriter> {
    const [b, api] = await Promise.all([loadBindings(), loadDuckDb()]);
    return new ColumnWriter(b, (types) => api.DuckDBDataChunk.create(types), kinds, duckTypes);
  }

  /** Starts a batch of up to `rows` rows. */
  begin(rows: number): void {
    if (rows > this.capacity) {
      this.capacity = Math.max(rows, 2 * this.capacity);
      this.flags = new Uint8Array(this.capacity);
      this.ops = new Uint8Array(this.capacity);
      this.lsns = new BigUint64Array(this.capacity);
      this.seqs = new Int32Array(this.capacity);
      this.commits = new BigInt64Array(this.capacity);
      this.opTexts = new Uint8Array(this.capacity * STRING_T);
      for (let r = 0; r < this.capacity; r++) this.opTexts[r * STRING_T] = 1;
    }
    for (const c of this.cols) c.reset(rows);
    this.rows = 0;
  }

  /** Whether some value of column i went to its text twin in this batch. */
  textUsed(i: number): boolean {
    return this.cols[i]!.hasText;
  }

  /**
   * Parses one row. `keep` lists columns whose text must be kept when some value of the row went to
   * its twin in a column of `watch` (the key of a row with a possibly unfit value).
   */
  row(meta: RowMeta, values: readonly TupleValue[], watch: readonly number[], keep: readonly number[]): void {
    const r = this.rows++;
    this.flags[r] = meta.flags;
    this.ops[r] = meta.op.charCodeAt(0);
    this.opTexts[r * STRING_T + 4] = this.ops[r]!;
    this.lsns[r] = meta.lsn;
    this.seqs[r] = meta.seq;
    this.commits[r] = meta.commitTimeUs;
    let refused = false;
    for (let i = 0; i < this.cols.length; i++) {
      if (!this.cols[i]!.set(r, values[i]) && watch.includes(i)) refused = true;
    }
    if (refused) for (const k of keep) this.cols[k]!.keepText(r, values[k]);
  }

  /**
   * The sources of an appender's columns, or null when some column's type does not store what its
   * source holds (then that table is not appended to directly).
   */
  check(ap: DuckDBAppender, sources: Source[]): Source[] | null {
    if (ap.columnCount !== sources.length) return null;
    for (let j = 0; j < sources.length; j++) {
      const s = sources[j]!;
      if (typeof s === 'object' && 'col' in s && !this.cols[s.col]!.fits(ap.columnType(j))) return null;
    }
    return sources;
  }

  /** Appends the batch's rows through `ap`, its columns filled from `sources` (one per column). */
  appendTo(ap: DuckDBAppender, sources: Source[]): void {
    const b = this.b;
    const types = Array.from({ length: ap.columnCount }, (_, j) => ap.columnType(j));
    for (let from = 0; from < this.rows; from += this.chunkRows) {
      const n = Math.min(this.chunkRows, this.rows - from);
      const dc = this.chunkOf(types);
      b.data_chunk_set_size(dc.chunk, n);
      for (let j = 0; j < sources.length; j++) {
        const s = sources[j]!;
        const vec = b.data_chunk_get_vector(dc.chunk, j);
        if (typeof s === 'object') {
          if ('col' in s) this.cols[s.col]!.write(b, vec, from, n);
          else this.cols[s.twin]!.writeTwin(b, vec, from, n);
        } else if (s === 'opText') {
          b.copy_data_to_vector(vec, 0, this.opTexts.buffer as ArrayBuffer, from * STRING_T, n * STRING_T);
        } else if (s === 'null') {
          b.vector_ensure_validity_writable(vec);
          const none = new ArrayBuffer(Math.ceil(n / 64) * 8);
          b.copy_data_to_vector_validity(vec, 0, none, 0, none.byteLength);
        } else {
          const w = META_WIDTH[s];
          const buf = { flags: this.flags, op: this.ops, lsn: this.lsns, seq: this.seqs, commit: this.commits }[s];
          b.copy_data_to_vector(vec, 0, buf.buffer as ArrayBuffer, from * w, n * w);
        }
      }
      ap.appendDataChunk(dc);
    }
  }
}
