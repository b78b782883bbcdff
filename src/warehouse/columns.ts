/**
 * Typed staging: PostgreSQL's text values parsed in JavaScript straight into DuckDB data chunks (one
 * native copy per column and 2,048 rows; one call per value only for text), instead of CSV text that
 * DuckDB parses and casts. A value the fast parsers do not take (BC dates, infinities, NaN, years past
 * 9999, numerics wider than 18 digits, and every type without a parser) goes into the column's text
 * twin `x<i>` and is converted by the mapping's SQL `fromText`, as before: every value stays exact.
 */
import type { DuckDBAppender, DuckDBDataChunk, DuckDBType } from '@duckdb/node-api';
import type { TupleValue } from '../change/index.ts';
import { UNCHANGED } from '../change/index.ts';
import { byteaHex } from './csv.ts';
import { loadBindings, loadDuckDb } from './duckdb-native.ts';
import { civilDays, decimal, integer, timestampMicros } from './pg-text.ts';
import type { ColumnMapping } from './pg-types.ts';

type Bindings = Awaited<ReturnType<typeof loadBindings>>;
type Vector = ReturnType<Bindings['data_chunk_get_vector']>;

/**
 * How a column is staged. `str`: VARCHAR as is (text types). `text`: only the text twin (types without
 * a parser). Others: a typed column plus the text twin for values the parser refuses.
 */
export type Kind = 'str' | 'text' | 'bool' | 'i16' | 'i32' | 'i64' | 'f64' | 'dec16' | 'dec32' | 'dec64' | 'date' | 'ts';

const WIDTH: Record<Kind, number> = { str: 0, text: 0, bool: 1, i16: 2, i32: 4, i64: 8, f64: 8, dec16: 2, dec32: 4, dec64: 8, date: 4, ts: 8 };

/** The staging kind of a mapped column. */
export function kindOf(c: ColumnMapping): Kind {
  const t = c.duckType;
  if (t === 'VARCHAR') return c.fromText('x') === 'x' ? 'str' : 'text';
  if (t === 'BIGINT') return 'i64';
  if (t === 'INTEGER') return 'i32';
  if (t === 'SMALLINT') return 'i16';
  if (t === 'BOOLEAN') return 'bool';
  if (t === 'DOUBLE') return 'f64';
  if (t === 'DATE') return 'date';
  if (t === 'TIMESTAMP' || t === 'TIMESTAMPTZ') return 'ts';
  const dec = /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
  if (dec) {
    const p = Number(dec[1]);
    if (p <= 4) return 'dec16';
    if (p <= 9) return 'dec32';
    if (p <= 18) return 'dec64';
  }
  return 'text';
}

/** The staged SQL type of a kind's typed column. */
export function typedColumnType(kind: Kind, duckType: string): string {
  return kind === 'str' ? 'VARCHAR' : kind === 'date' ? 'DATE' : duckType;
}

/** One staged column: a typed vector (unless `text`) and a text twin (unless `str`). */
class Column {
  readonly width: number;
  readonly scale: number;
  readonly tz: boolean;
  readonly data: ArrayBuffer;
  private readonly u8: Uint8Array;
  private readonly i16: Int16Array;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly i64: BigInt64Array;
  private readonly f64: Float64Array;
  readonly valid: Uint8Array;
  /** Values of a `str` column, or the text twin's (refused by the parser), by row of the chunk. */
  readonly strings: (string | null)[];
  readonly texts: (string | null)[];
  hasNull = false;
  hasText = false;

  constructor(
    readonly kind: Kind,
    duckType: string,
    rows: number,
  ) {
    this.width = WIDTH[kind];
    this.scale = Number(/,(\d+)\)$/.exec(duckType)?.[1] ?? 0);
    this.tz = duckType === 'TIMESTAMPTZ';
    this.data = new ArrayBuffer(Math.max(8, rows * this.width));
    this.u8 = new Uint8Array(this.data);
    this.i16 = new Int16Array(this.data);
    this.i32 = new Int32Array(this.data);
    this.u32 = new Uint32Array(this.data);
    this.i64 = new BigInt64Array(this.data);
    this.f64 = new Float64Array(this.data);
    this.valid = new Uint8Array(Math.ceil(rows / 64) * 8);
    this.strings = new Array(rows).fill(null);
    this.texts = new Array(rows).fill(null);
  }

  reset(): void {
    this.valid.fill(0xff);
    this.hasNull = false;
    this.hasText = false;
    this.strings.fill(null);
    this.texts.fill(null);
  }

  private setNull(r: number): void {
    this.valid[r >> 3]! &= ~(1 << (r & 7));
    this.hasNull = true;
  }

  /** Writes a safe integer as int64 without a BigInt. */
  private int64(r: number, n: number): void {
    const hi = Math.floor(n / 4294967296);
    this.u32[2 * r] = n - hi * 4294967296;
    this.i32[2 * r + 1] = hi;
  }

  /** Stores value `v` at row `r`; false when it went to the text twin (the parser refused it). */
  set(r: number, v: TupleValue | undefined): boolean {
    if (v === null || v === undefined) {
      this.setNull(r);
      return true;
    }
    if (v === UNCHANGED) throw new Error('internal: unchanged TOAST value reached staging unfilled');
    const s = typeof v === 'string' ? v : byteaHex(v);
    if (this.kind === 'str') {
      this.strings[r] = s;
      return true;
    }
    if (this.kind !== 'text' && this.parse(r, s)) return true;
    this.setNull(r);
    this.texts[r] = s;
    this.hasText = true;
    return false;
  }

  /** Text of a value parsed fine, kept for `_ducktail.unfit_values` (a key of a row with an unfit value). */
  keepText(r: number, v: TupleValue | undefined): void {
    if (typeof v === 'string' && this.kind !== 'str') {
      this.texts[r] = v;
      this.hasText = true;
    }
  }

  private parse(r: number, s: string): boolean {
    switch (this.kind) {
      case 'bool':
        if (s !== 't' && s !== 'f') return false;
        this.u8[r] = s === 't' ? 1 : 0;
        return true;
      case 'i16':
      case 'i32': {
        const n = integer(s);
        if (Number.isNaN(n)) return false;
        if (this.kind === 'i16' ? n < -32768 || n > 32767 : n < -2147483648 || n > 2147483647) return false;
        if (this.kind === 'i16') this.i16[r] = n;
        else this.i32[r] = n;
        return true;
      }
      case 'i64': {
        const n = integer(s);
        if (!Number.isNaN(n)) this.int64(r, n);
        else {
          if (!/^-?\d{16,19}$/.test(s)) return false;
          const b = BigInt(s);
          if (BigInt.asIntN(64, b) !== b) return false;
          this.i64[r] = b;
        }
        return true;
      }
      case 'f64': {
        const n = Number(s);
        if (s === '' || (Number.isNaN(n) && s !== 'NaN')) return false;
        this.f64[r] = n;
        return true;
      }
      case 'dec16':
      case 'dec32':
      case 'dec64': {
        const n = decimal(s, this.scale);
        if (Number.isNaN(n)) return false;
        if (this.kind === 'dec16') this.i16[r] = n;
        else if (this.kind === 'dec32') this.i32[r] = n;
        else this.int64(r, n);
        return true;
      }
      case 'date': {
        const d = s.length === 10 ? civilDays(s) : NaN;
        if (Number.isNaN(d)) return false;
        this.i32[r] = d;
        return true;
      }
      case 'ts':
        return this.timestamp(r, s);
      default:
        return false;
    }
  }

  private timestamp(r: number, s: string): boolean {
    const us = timestampMicros(s, this.tz);
    if (typeof us === 'bigint') this.i64[r] = us;
    else if (Number.isNaN(us)) return false;
    else this.int64(r, us);
    return true;
  }

  /** Copies the column's first `n` rows into vector `vec` (typed) or `twin` (text). */
  flush(b: Bindings, vec: Vector | null, twin: Vector | null, n: number): void {
    if (this.kind === 'str') {
      for (let r = 0; r < n; r++) {
        const s = this.strings[r];
        if (s === null || s === undefined) this.setNull(r);
        else b.vector_assign_string_element(vec!, r, s);
      }
    } else if (this.kind !== 'text') {
      b.copy_data_to_vector(vec!, 0, this.data, 0, n * this.width);
    }
    if (vec && this.hasNull) {
      b.vector_ensure_validity_writable(vec);
      b.copy_data_to_vector_validity(vec, 0, this.valid.buffer as ArrayBuffer, 0, Math.ceil(n / 64) * 8);
    }
    if (!twin) return;
    const valid = new Uint8Array(this.valid.length);
    for (let r = 0; r < n; r++) {
      const s = this.texts[r];
      if (s === null || s === undefined) continue;
      valid[r >> 3]! |= 1 << (r & 7);
      b.vector_assign_string_element(twin, r, s);
    }
    b.vector_ensure_validity_writable(twin);
    b.copy_data_to_vector_validity(twin, 0, valid.buffer, 0, Math.ceil(n / 64) * 8);
  }
}

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
 * The staged columns of one layout (after the bookkeeping ones): rows go into JS-side column buffers
 * and are appended as data chunks of up to 2,048 rows through an appender of the staging table.
 */
export class ColumnWriter {
  private readonly cols: Column[];
  private readonly flags: Uint8Array<ArrayBuffer>;
  private readonly ops: Uint8Array<ArrayBuffer>;
  private readonly lsns: BigUint64Array<ArrayBuffer>;
  private readonly seqs: Int32Array<ArrayBuffer>;
  private readonly commits: BigInt64Array<ArrayBuffer>;
  /** Per column, whether some row of the batch went to its text twin. */
  readonly textUsed: boolean[];
  private rows = 0;
  private ap: DuckDBAppender | null = null;
  private types: DuckDBType[] = [];

  private constructor(
    private readonly b: Bindings,
    private readonly chunkOf: (types: DuckDBType[]) => DuckDBDataChunk,
    readonly kinds: Kind[],
    duckTypes: string[],
    private readonly capacity: number,
  ) {
    this.cols = kinds.map((k, i) => new Column(k, duckTypes[i]!, capacity));
    for (const c of this.cols) c.reset();
    this.textUsed = kinds.map(() => false);
    this.flags = new Uint8Array(capacity);
    this.ops = new Uint8Array(capacity);
    this.lsns = new BigUint64Array(capacity);
    this.seqs = new Int32Array(capacity);
    this.commits = new BigInt64Array(capacity);
  }

  static async create(kinds: Kind[], duckTypes: string[]): Promise<ColumnWriter> {
    const [b, api] = await Promise.all([loadBindings(), loadDuckDb()]);
    return new ColumnWriter(b, (types) => api.DuckDBDataChunk.create(types), kinds, duckTypes, b.vector_size());
  }

  /** Starts a batch appended through `ap` (an appender of the staging table). */
  begin(ap: DuckDBAppender): void {
    this.ap = ap;
    this.types = Array.from({ length: ap.columnCount }, (_, i) => ap.columnType(i));
    this.textUsed.fill(false);
    this.rows = 0;
  }

  /**
   * Stages one row. `keep` lists columns whose text must be kept when some value of the row went to
   * its twin in a column of `watch` (the key of a row with a possibly unfit value).
   */
  row(meta: RowMeta, values: readonly TupleValue[], n: number, watch: readonly number[], keep: readonly number[]): void {
    const r = this.rows;
    this.flags[r] = meta.flags;
    this.ops[r] = meta.op.charCodeAt(0);
    this.lsns[r] = meta.lsn;
    this.seqs[r] = meta.seq;
    this.commits[r] = meta.commitTimeUs;
    let refused = false;
    for (let i = 0; i < n; i++) {
      if (!this.cols[i]!.set(r, values[i]) && watch.includes(i)) refused = true;
    }
    if (refused) for (const k of keep) this.cols[k]!.keepText(r, values[k]);
    if (++this.rows === this.capacity) this.flush();
  }

  /** Appends the rows buffered so far as one data chunk. */
  flush(): void {
    const n = this.rows;
    if (n === 0) return;
    const b = this.b;
    const dc = this.chunkOf(this.types);
    const chunk = dc.chunk;
    b.data_chunk_set_size(chunk, n);
    b.copy_data_to_vector(b.data_chunk_get_vector(chunk, 0), 0, this.flags.buffer, 0, n);
    b.copy_data_to_vector(b.data_chunk_get_vector(chunk, 1), 0, this.ops.buffer, 0, n);
    b.copy_data_to_vector(b.data_chunk_get_vector(chunk, 2), 0, this.lsns.buffer, 0, n * 8);
    b.copy_data_to_vector(b.data_chunk_get_vector(chunk, 3), 0, this.seqs.buffer, 0, n * 4);
    b.copy_data_to_vector(b.data_chunk_get_vector(chunk, 4), 0, this.commits.buffer, 0, n * 8);
    let v = 5;
    const noText = new ArrayBuffer(Math.ceil(n / 64) * 8);
    for (let i = 0; i < this.cols.length; i++) {
      const c = this.cols[i]!;
      const vec = c.kind === 'text' ? null : b.data_chunk_get_vector(chunk, v++);
      const twin = c.kind === 'str' ? null : b.data_chunk_get_vector(chunk, v++);
      if (c.hasText) this.textUsed[i] = true;
      c.flush(b, vec, c.hasText ? twin : null, n);
      if (twin && !c.hasText) {
        b.vector_ensure_validity_writable(twin);
        b.copy_data_to_vector_validity(twin, 0, noText, 0, noText.byteLength);
      }
      c.reset();
    }
    this.ap!.appendDataChunk(dc);
    this.rows = 0;
  }
}
