import { type ColumnSchema, type TupleValue, UNCHANGED } from '../change/index.ts';
import { FORMATS, fits, INT_RANGE, plainForm, SAFE_DIGITS } from './kafka-fits.ts';

/**
 * A byte walker for the payload exactly as ducktail's encoder writes it (kafka-encode.ts), the consumer's
 * fast path: no string of the whole payload, no regular expression over it. It walks the value's bytes
 * against the layout's known shape (keys in the encoder's order, the layout's columns in attribute order,
 * no whitespace, row values `null` or a JSON string, integers in plain digits) and takes only the used row
 * image's values, each as its own small string (Latin-1 copy when ASCII, UTF-8 otherwise). Anything else
 * is refused (`scan` or `take` false): another key order, whitespace, an unknown or missing field, a number
 * with a sign, fraction or exponent, a control character, a bad escape, truncated JSON, a value `fits`
 * refuses. The caller then reads the value with JSON.parse and valibot, which decide (and name the error)
 * as before. What the walker accepts is valid JSON that JSON.parse + valibot read to the same values.
 */

/** Bun's (and Node's) undocumented Buffer methods behind toString('latin1' | 'utf8'), without their argument handling. */
type Slices = { latin1Slice(start: number, end: number): string; utf8Slice(start: number, end: number): string };

const enum Kind {
  /** No check (`fits` passes every value): escapes allowed, unescaped by JSON.parse. */
  Text = 0,
  /** int2/int4/int8: digits checked here, long ones by `fits`. */
  Int = 1,
  /** A type `fits` checks by its format. */
  Checked = 2,
}

/** Value flags found while scanning a string. */
const NON_ASCII = 1;
const ESCAPED = 2;

/** A layout compiled for the walker: each column's key bytes and kind, and scratch for the value ranges of one event. */
export interface WalkLayout {
  columns: ColumnSchema[];
  /** `{"name":` for the first column, `,"name":` for the others (UTF-8 of JSON.stringify). */
  keys: Uint8Array[];
  kinds: Uint8Array;
  safe: Uint8Array;
  /** Per record (before, after) and column: value start (-1 = null), end, flags. */
  starts: Int32Array;
  ends: Int32Array;
  flags: Uint8Array;
}

/** Layouts with more columns are left to JSON.parse. */
const MAX_COLUMNS = 1024;
const compiled = new WeakMap<ColumnSchema[], WalkLayout | null>();

/** The walker's form of `columns`; undefined when two columns share a name or there are too many. */
export function walkLayout(columns: ColumnSchema[]): WalkLayout | undefined {
  let l = compiled.get(columns);
  if (l === undefined) {
    const n = columns.length;
    const ok = n > 0 && n <= MAX_COLUMNS && new Set(columns.map((c) => c.name)).size === n;
    l = ok
      ? {
          columns,
          keys: columns.map((c, i) => Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`)),
          kinds: Uint8Array.from(columns, (c) => (INT_RANGE[c.typeOid] !== undefined ? Kind.Int : FORMATS[c.typeOid] ? Kind.Checked : Kind.Text)),
          safe: Uint8Array.from(columns, (c) => SAFE_DIGITS[c.typeOid] ?? 0),
          starts: new Int32Array(2 * n),
          ends: new Int32Array(2 * n),
          flags: new Uint8Array(2 * n),
        }
      : null;
    compiled.set(columns, l);
  }
  return l ?? undefined;
}

const lit = (s: string) => Buffer.from(s);
const BEFORE = lit('{"before":');
const AFTER = lit(',"after":');
const SOURCE = lit(',"source":{"version":');
const CONNECTOR = lit(',"connector":');
const NAME = lit(',"name":');
const TS_MS = lit(',"ts_ms":');
const TS_US = lit(',"ts_us":');
const SNAPSHOT = lit(',"snapshot":');
const DB = lit(',"db":');
const SCHEMA = lit(',"schema":');
const TABLE = lit(',"table":');
const TX_ID = lit(',"txId":');
const LSN = lit(',"lsn":');
const SEQ = lit(',"seq":');
const POS_LSN = lit(',"pos_lsn":');
const POS_ORD = lit(',"pos_ord":');
const UNCHANGED_AT = lit(',"unchanged":[');
const LAYOUT = lit(',"layout":');
const OP = lit('},"op":"');
const NULL = lit('null');
const EMPTY = Buffer.alloc(0);
const Q = 0x22;
const BACKSLASH = 0x5c;

/** The bytes of a part of the last event checked (events of a run repeat them), and the strings read from them. */
class Seen {
  bytes: Uint8Array = new Uint8Array(0);
  schema = '';
  table = '';
  unchangedAt = 0;
  unchangedEnd = 0;
  layoutAt = -1;
  layoutEnd = -1;
  /** Whether `data` at `at` starts with the noted bytes. */
  same(data: Buffer, at: number, end: number): boolean {
    const b = this.bytes;
    const n = b.length;
    if (n === 0 || at + n > end) return false;
    for (let i = 0; i < n; i++) if (data[at + i] !== b[i]) return false;
    return true;
  }
  note(data: Buffer, from: number, to: number): void {
    this.bytes = Uint8Array.prototype.slice.call(data, from, to);
  }
}

/**
 * One event's walk: `scan` checks the shape and notes where each value lies (and reads the source block's
 * numbers); `take` then builds the row of the image `op` uses. Not reentrant: one per thread.
 */
export class Walker {
  /** The op's character code (r, c, u, d, t). */
  op = 0;
  schema = '';
  table = '';
  /** Null when the event has none. */
  txId: number | null = null;
  lsn = 0;
  seq = 0;
  tsUs = 0;
  posLsn = 0;
  posOrd = 0;
  /** The layout id's byte range, -1 when the source block has none. */
  layoutAt = -1;
  layoutEnd = -1;
  private d: Buffer = EMPTY;
  private p = 0;
  private e = 0;
  /** The last string's flags (NON_ASCII, ESCAPED), or -1 when it was not a valid JSON string. */
  private f = 0;
  private beforeNull = false;
  private afterNull = false;
  private unchangedAt = -1;
  private unchangedEnd = -1;
  private l: WalkLayout | undefined;
  /** The source block from its start to ts_ms (version, connector, name), and from snapshot to txId (db, schema, table). */
  private readonly heads = new Seen();
  private readonly wheres = new Seen();
  /** From the unchanged list to the op's opening quote (ranges relative to its start). */
  private readonly tails = new Seen();
  /** Per record (before, after): its byte range and the OR of its values' flags. */
  private readonly recAt = [0, 0];
  private readonly recEnd = [0, 0];
  private readonly recFlags = [0, 0];

  /** Whether [start, end) of `data` is a payload of layout `l` in the encoder's exact shape. */
  scan(data: Buffer, start: number, end: number, l: WalkLayout): boolean {
    this.d = data;
    this.p = start;
    this.e = end;
    this.l = l;
    if (!this.lit(BEFORE) || !this.record(l, 0) || !this.lit(AFTER) || !this.record(l, l.columns.length)) return false;
    // The source block's constant parts are compared with the last event's (checked then), else checked.
    let at = this.p;
    if (this.heads.same(data, at, end)) this.p = at + this.heads.bytes.length;
    else {
      if (!this.lit(SOURCE) || this.skipString() < 0 || !this.lit(CONNECTOR) || this.skipString() < 0 || !this.lit(NAME) || this.skipString() < 0) return false;
      this.heads.note(data, at, this.p);
    }
    if (!this.lit(TS_MS) || this.int() < 0 || !this.lit(TS_US)) return false;
    if ((this.tsUs = this.int()) < 0) return false;
    at = this.p;
    if (this.wheres.same(data, at, end)) this.p = at + this.wheres.bytes.length;
    else {
      if (!this.lit(SNAPSHOT) || this.skipString() < 0 || !this.lit(DB) || this.skipString() < 0 || !this.lit(SCHEMA)) return false;
      let from = this.p;
      if (!this.plain()) return false;
      const schema = this.utf8OrLatin1(from + 1, this.p - 1);
      if (!this.lit(TABLE)) return false;
      from = this.p;
      if (!this.plain()) return false;
      const table = this.utf8OrLatin1(from + 1, this.p - 1);
      this.wheres.note(data, at, this.p);
      this.wheres.schema = schema;
      this.wheres.table = table;
    }
    this.schema = this.wheres.schema;
    this.table = this.wheres.table;
    if (!this.lit(TX_ID)) return false;
    if (this.lit(NULL)) this.txId = null;
    else if ((this.txId = this.int()) < 0) return false;
    if (!this.lit(LSN) || (this.lsn = this.int()) < 0 || !this.lit(SEQ) || (this.seq = this.int()) < 0) return false;
    if (!this.lit(POS_LSN) || (this.posLsn = this.int()) < 0 || !this.lit(POS_ORD) || (this.posOrd = this.int()) < 0) return false;
    at = this.p;
    const tail = this.tails;
    if (tail.same(data, at, end)) {
      // The unchanged list and layout id as in the last event's tail (checked then).
      this.p = at + tail.bytes.length;
      this.unchangedAt = at + tail.unchangedAt;
      this.unchangedEnd = at + tail.unchangedEnd;
      this.layoutAt = tail.layoutAt < 0 ? -1 : at + tail.layoutAt;
      this.layoutEnd = at + tail.layoutEnd;
    } else if (!this.tail(data, at, end)) return false;
    if (this.p + 2 > end) return false;
    const op = data[this.p]!;
    if ((op !== 0x63 && op !== 0x75 && op !== 0x64 && op !== 0x72 && op !== 0x74) || data[this.p + 1] !== Q) return false;
    this.op = op;
    this.p += 2;
    if (!this.lit(TS_MS) || this.int() < 0) return false;
    return this.p + 1 === end && data[this.p] === 0x7d;
  }

  /** The source block's tail from `at`: the unchanged list, the layout id if any, and `},"op":"`; noted in `tails`. */
  private tail(data: Buffer, at: number, end: number): boolean {
    if (!this.lit(UNCHANGED_AT)) return false;
    this.unchangedAt = this.p;
    if (this.p < end && data[this.p] === Q) {
      if (!this.plain()) return false;
      while (this.p < end && data[this.p] === 0x2c) {
        this.p++;
        if (this.p >= end || data[this.p] !== Q || !this.plain()) return false;
      }
    }
    this.unchangedEnd = this.p;
    if (this.p >= end || data[this.p++] !== 0x5d) return false;
    this.layoutAt = -1;
    this.layoutEnd = -1;
    if (this.lit(LAYOUT)) {
      const from = this.p;
      if (!this.plain()) return false;
      this.layoutAt = from + 1;
      this.layoutEnd = this.p - 1;
    }
    if (!this.lit(OP)) return false;
    const t = this.tails;
    t.note(data, at, this.p);
    t.unchangedAt = this.unchangedAt - at;
    t.unchangedEnd = this.unchangedEnd - at;
    t.layoutAt = this.layoutAt < 0 ? -1 : this.layoutAt - at;
    t.layoutEnd = this.layoutEnd < 0 ? -1 : this.layoutEnd - at;
    return true;
  }

  private utf8OrLatin1(from: number, to: number): string {
    const d = this.d as unknown as Slices;
    return this.f & NON_ASCII ? d.utf8Slice(from, to) : d.latin1Slice(from, to);
  }

  /** Drops the reference to the last event's bytes (a fetch response can be large). */
  release(): void {
    this.d = EMPTY;
  }

  /** Whether the scanned event's layout id is `id`'s bytes. */
  layoutIs(id: Uint8Array | undefined): boolean {
    if (id === undefined || this.layoutAt < 0 || this.layoutEnd - this.layoutAt !== id.length) return false;
    for (let i = 0; i < id.length; i++) if (this.d[this.layoutAt + i] !== id[i]) return false;
    return true;
  }

  /** The scanned event's layout id, undefined when it has none. */
  layoutId(): string | undefined {
    return this.layoutAt < 0 ? undefined : this.d.toString('utf8', this.layoutAt, this.layoutEnd);
  }

  /**
   * The row of the scanned event's image (before for d, after otherwise; [] for t), its unchanged columns
   * UNCHANGED; undefined when that image is null or a value is not taken here (escaped or non-ASCII text
   * in a checked column, a value `fits` refuses): the slow path then decides.
   */
  take(): TupleValue[] | undefined {
    if (this.op === 0x74) return [];
    const l = this.l!;
    const n = l.columns.length;
    const base = this.op === 0x64 ? 0 : n;
    const d = this.d as unknown as Slices;
    const data = this.d;
    const { starts, ends, flags, kinds, columns } = l;
    if (base === 0 ? this.beforeNull : this.afterNull) return undefined; // no row image: poison, named by the slow path
    const unchanged = this.unchangedEnd > this.unchangedAt ? this.unchangedNames() : undefined;
    // An ASCII image is copied once, its values taken as substrings of it (no copy each); else each is decoded.
    const r = base === 0 ? 0 : 1;
    const ascii = (this.recFlags[r]! & NON_ASCII) === 0;
    const at = this.recAt[r]!;
    const image = ascii ? d.latin1Slice(at, this.recEnd[r]!) : '';
    const row = new Array<TupleValue>(n);
    for (let i = 0; i < n; i++) {
      if (unchanged !== undefined && unchanged.has(columns[i]!.name)) {
        row[i] = UNCHANGED;
        continue;
      }
      const s = starts[base + i]!;
      if (s < 0) {
        row[i] = null;
        continue;
      }
      const e = ends[base + i]!;
      const f = flags[base + i]!;
      const kind = kinds[i]!;
      if (kind === Kind.Text) {
        const text = ascii ? image.substring(s - at, e - at) : f & NON_ASCII ? d.utf8Slice(s, e) : d.latin1Slice(s, e);
        row[i] = f & ESCAPED ? (JSON.parse(`"${text}"`) as string) : text;
        continue;
      }
      if (f !== 0) return undefined; // no format has a backslash or non-ASCII: the slow path decides
      const text = ascii ? image.substring(s - at, e - at) : d.latin1Slice(s, e);
      if (kind === Kind.Int) {
        let j = s;
        if (j < e && data[j] === 0x2d) j++;
        const digits = e - j;
        let ok = digits > 0 && digits <= l.safe[i]!;
        for (; ok && j < e; j++) ok = data[j]! >= 0x30 && data[j]! <= 0x39;
        if (!ok && !fits(columns[i]!.typeOid, text)) return undefined;
      } else if (!plainForm(columns[i]!.typeOid, data, s, e) && !fits(columns[i]!.typeOid, text)) return undefined;
      row[i] = text;
    }
    return row;
  }

  /** The unchanged list's names (strings without escapes, checked by scan). */
  private unchangedNames(): Set<string> {
    const names = new Set<string>();
    const data = this.d;
    let p = this.unchangedAt;
    while (p < this.unchangedEnd) {
      const from = p + 1;
      let to = from;
      let nonAscii = false;
      while (data[to] !== Q) if (data[to++]! >= 0x80) nonAscii = true;
      names.add(nonAscii ? (data as unknown as Slices).utf8Slice(from, to) : (data as unknown as Slices).latin1Slice(from, to));
      p = to + 2; // past the quote and the comma
    }
    return names;
  }

  /** A row image: `null` or `{` the layout's keys in order, each value `null` or a JSON string `}`; ranges into `base`. */
  private record(l: WalkLayout, base: number): boolean {
    const n = l.columns.length;
    const { starts, ends, flags } = l;
    const isNull = this.lit(NULL);
    if (base === 0) this.beforeNull = isNull;
    else this.afterNull = isNull;
    if (isNull) return true;
    const data = this.d;
    const r = base === 0 ? 0 : 1;
    this.recAt[r] = this.p;
    let all = 0;
    for (let i = 0; i < n; i++) {
      if (!this.lit(l.keys[i]!)) return false;
      if (this.p < this.e && data[this.p] === Q) {
        const at = this.p + 1;
        if (this.skipString() < 0) return false;
        starts[base + i] = at;
        ends[base + i] = this.p - 1;
        flags[base + i] = this.f;
        all |= this.f;
      } else if (this.lit(NULL)) starts[base + i] = -1;
      else return false;
    }
    if (this.p >= this.e || data[this.p] !== 0x7d) return false;
    this.recEnd[r] = this.p;
    this.recFlags[r] = all;
    this.p++;
    return true;
  }

  /**
   * Past a JSON string at p (its opening quote), to after its closing quote; its flags in `f`. -1 (and
   * f = -1) for a control character, a bad escape or no closing quote. Escapes as JSON has them: \" \\ \/
   * \b \f \n \r \t \uXXXX.
   */
  private skipString(): number {
    const data = this.d;
    const e = this.e;
    if (this.p >= e || data[this.p] !== Q) return (this.f = -1);
    let p = this.p + 1;
    let f = 0;
    for (;;) {
      if (p >= e) return (this.f = -1);
      const b = data[p]!;
      if (b === Q) break;
      if (b < 0x20) return (this.f = -1);
      if (b >= 0x80) f |= NON_ASCII;
      else if (b === BACKSLASH) {
        f |= ESCAPED;
        const c = data[p + 1];
        if (c === 0x75) {
          if (p + 6 > e) return (this.f = -1);
          for (let k = p + 2; k < p + 6; k++) {
            const h = data[k]!;
            if (!((h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) return (this.f = -1);
          }
          p += 6;
          continue;
        }
        if (c !== Q && c !== BACKSLASH && c !== 0x2f && c !== 0x62 && c !== 0x66 && c !== 0x6e && c !== 0x72 && c !== 0x74) return (this.f = -1);
        p += 2;
        continue;
      }
      p++;
    }
    this.p = p + 1;
    this.f = f;
    return 0;
  }

  /** A non-negative JSON integer at p (no sign, fraction, exponent or leading zero) as JSON.parse reads it; -1 when there is none. */
  private int(): number {
    const data = this.d;
    const e = this.e;
    const from = this.p;
    let p = from;
    if (p >= e) return -1;
    const first = data[p]!;
    if (first === 0x30) {
      this.p = p + 1;
      return 0;
    }
    if (first < 0x31 || first > 0x39) return -1;
    let n = 0;
    while (p < e && data[p]! >= 0x30 && data[p]! <= 0x39) n = n * 10 + (data[p++]! - 0x30);
    this.p = p;
    // Up to 2^53 - 1 the sum is exact (so is every partial sum); larger ones as JSON.parse rounds them.
    return n <= Number.MAX_SAFE_INTEGER ? n : Number((data as unknown as Slices).latin1Slice(from, p));
  }

  /** Past a JSON string without escapes (its text is the bytes between its quotes); false for anything else. */
  private plain(): boolean {
    return this.skipString() === 0 && (this.f & ESCAPED) === 0;
  }

  /** Whether the bytes at p are `bytes` (then p moves past them). */
  private lit(bytes: Uint8Array): boolean {
    const data = this.d;
    const p = this.p;
    const n = bytes.length;
    if (p + n > this.e) return false;
    for (let i = 0; i < n; i++) if (data[p + i] !== bytes[i]) return false;
    this.p = p + n;
    return true;
  }
}
