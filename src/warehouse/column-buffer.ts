/**
 * One column of a batch in JS-side buffers: values parsed from PostgreSQL's text into DuckDB's in-memory
 * layout (columns.ts appends them as data chunks). A value the parsers (pg-text.ts) refuse goes to the
 * column's text twin, converted later by the mapping's SQL `fromText`.
 */
import type { DuckDBType } from '@duckdb/node-api';
import type { TupleValue } from '../change/index.ts';
import { UNCHANGED } from '../change/index.ts';
import { byteaHex } from './csv.ts';
import type { loadBindings } from './duckdb-native.ts';
import { civilDays, decimal, integer, timestampMicros } from './pg-text.ts';
import type { ColumnMapping } from './pg-types.ts';

export type Bindings = Awaited<ReturnType<typeof loadBindings>>;
export type Vector = ReturnType<Bindings['data_chunk_get_vector']>;

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

const ALL_VALID = 0xff;
/** Bytes of a DuckDB `string_t`. */
export const STRING_T = 16;

/**
 * Writes `s` at `at` as an inline DuckDB `string_t` (length, then the bytes, zero padded: the slot must be
 * zero) when it is ASCII of at most 12 characters; false otherwise (nothing written).
 */
export function inlineAscii(out: Uint8Array, at: number, s: string): boolean {
  const n = s.length;
  if (n > 12) return false;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return false;
  for (let i = 0; i < n; i++) out[at + 4 + i] = s.charCodeAt(i);
  out[at] = n; // little-endian uint32 length, n < 256
  return true;
}
/** DuckDBTypeId values (a value import of @duckdb/node-api would load the native library before duckdb-native.ts may). */
const TYPE_ID = { BOOLEAN: 1, SMALLINT: 3, INTEGER: 4, BIGINT: 5, DOUBLE: 11, TIMESTAMP: 12, DATE: 13, VARCHAR: 17, DECIMAL: 19, TIMESTAMP_TZ: 31 };

/** One column of a batch: a typed buffer (unless `text`), validity bits, and text (for `str` and the twin). */
export class Column {
  readonly width: number;
  readonly scale: number;
  readonly tz: boolean;
  private capacity = 0;
  data = new ArrayBuffer(8);
  private u8 = new Uint8Array(this.data);
  private i16 = new Int16Array(this.data);
  private i32 = new Int32Array(this.data);
  private u32 = new Uint32Array(this.data);
  private i64 = new BigInt64Array(this.data);
  private f64 = new Float64Array(this.data);
  /** Validity of the typed value (or of the `str` value): bit r set = not NULL. */
  valid = new Uint8Array(8);
  /** Values of a `str` column; the twin's texts (values the parser refused) of the others. */
  strings: (string | null)[] = [];
  texts: (string | null)[] = [];
  /**
   * A `str` column's values as DuckDB `string_t`s (duckdb.h `duckdb_string_t`: a uint32 length, then up to
   * 12 bytes inline, the rest zero), copied to a vector in one call; `spilled` lists the rows whose value
   * does not fit inline (or is not ASCII), assigned one call each.
   */
  private inline = new Uint8Array(0);
  private spilled: number[] = [];
  /** Some value of the batch is NULL / went to the twin. */
  hasNull = false;
  hasText = false;

  constructor(
    readonly kind: Kind,
    readonly duckType: string,
  ) {
    this.width = WIDTH[kind];
    this.scale = Number(/,(\d+)\)$/.exec(duckType)?.[1] ?? 0);
    this.tz = duckType === 'TIMESTAMPTZ';
  }

  /** Empties the column for a batch of up to `rows` rows. */
  reset(rows: number): void {
    if (rows > this.capacity) {
      this.capacity = Math.max(rows, 2 * this.capacity, 2048);
      this.data = new ArrayBuffer(this.capacity * 8); // typed views of every width over it
      this.u8 = new Uint8Array(this.data);
      this.i16 = new Int16Array(this.data);
      this.i32 = new Int32Array(this.data);
      this.u32 = new Uint32Array(this.data);
      this.i64 = new BigInt64Array(this.data);
      this.f64 = new Float64Array(this.data);
      this.valid = new Uint8Array(Math.ceil(this.capacity / 64) * 8);
      this.strings = new Array(this.capacity).fill(null);
      this.texts = new Array(this.capacity).fill(null);
      if (this.kind === 'str') this.inline = new Uint8Array(this.capacity * STRING_T);
    } else {
      if (this.kind === 'str') {
        this.strings.fill(null, 0, rows);
        this.inline.fill(0, 0, rows * STRING_T);
      }
      if (this.hasText) this.texts.fill(null, 0, rows);
    }
    this.spilled.length = 0;
    this.valid.fill(ALL_VALID);
    this.hasNull = false;
    this.hasText = false;
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
      if (!inlineAscii(this.inline, r * STRING_T, s)) this.spilled.push(r);
      return true;
    }
    if (this.kind !== 'text' && this.parse(r, s)) return true;
    this.setNull(r);
    this.texts[r] = s;
    this.hasText = true;
    return false;
  }

  /** Keeps the text of a value parsed fine (the key of a row with an unfit value, for `_ducktail.unfit_values`). */
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
      case 'ts': {
        const us = timestampMicros(s, this.tz);
        if (typeof us === 'bigint') this.i64[r] = us;
        else if (Number.isNaN(us)) return false;
        else this.int64(r, us);
        return true;
      }
      default:
        return false;
    }
  }

  /** Whether `type` (a DuckDB column's) stores exactly this column's typed values. */
  fits(type: DuckDBType): boolean {
    const id = type.typeId;
    switch (this.kind) {
      case 'str':
        return id === TYPE_ID.VARCHAR;
      case 'bool':
        return id === TYPE_ID.BOOLEAN;
      case 'i16':
        return id === TYPE_ID.SMALLINT;
      case 'i32':
        return id === TYPE_ID.INTEGER;
      case 'i64':
        return id === TYPE_ID.BIGINT;
      case 'f64':
        return id === TYPE_ID.DOUBLE;
      case 'date':
        return id === TYPE_ID.DATE;
      case 'ts':
        return id === (this.tz ? TYPE_ID.TIMESTAMP_TZ : TYPE_ID.TIMESTAMP);
      case 'dec16':
      case 'dec32':
      case 'dec64': {
        const d = type as DuckDBType & { width?: number; scale?: number };
        return id === TYPE_ID.DECIMAL && `DECIMAL(${d.width},${d.scale})` === this.duckType;
      }
      default:
        return false;
    }
  }

  /** Copies rows [from, from + n) of the typed (or `str`) values into `vec`; `from` is a multiple of 64. */
  write(b: Bindings, vec: Vector, from: number, n: number): void {
    if (this.kind === 'str') {
      // Short ASCII values in one copy; the others one call each (DuckDB keeps their bytes in the vector's heap).
      b.copy_data_to_vector(vec, 0, this.inline.buffer as ArrayBuffer, from * STRING_T, n * STRING_T);
      // `spilled` is in row order (rows are set in order): start at the first row of this vector.
      const sp = this.spilled;
      let lo = 0;
      for (let hi = sp.length; lo < hi; ) {
        const mid = (lo + hi) >> 1;
        if (sp[mid]! < from) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < sp.length && sp[i]! < from + n; i++) b.vector_assign_string_element(vec, sp[i]! - from, this.strings[sp[i]!]!);
    } else {
      b.copy_data_to_vector(vec, 0, this.data, from * this.width, n * this.width);
    }
    if (this.hasNull) {
      b.vector_ensure_validity_writable(vec);
      b.copy_data_to_vector_validity(vec, 0, this.valid.buffer as ArrayBuffer, from >> 3, Math.ceil(n / 64) * 8);
    }
  }

  /** Copies rows [from, from + n) of the text twin into `vec` (all NULL when nothing went there). */
  writeTwin(b: Bindings, vec: Vector, from: number, n: number): void {
    const valid = new Uint8Array(Math.ceil(n / 64) * 8);
    if (this.hasText) {
      for (let r = 0; r < n; r++) {
        const s = this.texts[from + r];
        if (s === null || s === undefined) continue;
        valid[r >> 3]! |= 1 << (r & 7);
        b.vector_assign_string_element(vec, r, s);
      }
    }
    b.vector_ensure_validity_writable(vec);
    b.copy_data_to_vector_validity(vec, 0, valid.buffer, 0, valid.byteLength);
  }
}
