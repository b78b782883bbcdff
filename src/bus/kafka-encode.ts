import { createHash } from 'node:crypto';
import { type Change, type TableSchema, type TupleValue, UNCHANGED } from '../change/index.ts';

/**
 * Writing events: Debezium's JSON envelope with schemas enabled (JsonConverter `schemas.enable=true`),
 * every value is `{"schema": ..., "payload": {before, after, source, op, ts_ms}}`. The schema block is how a consumer
 * (ours included) rebuilds the table's layout from Kafka alone: each column is a field in attribute
 * order, with its PostgreSQL type OID, type modifier and key flag as field parameters. Values are
 * PostgreSQL's exact text form (a Kafka Connect "string"), never converted through a float.
 *
 * With `eventSchema = "topic"` a value is the payload alone (JsonConverter `schemas.enable=false`) and
 * `source.layout` names its schema block, which is published once per layout on the schema topic
 * (`<prefix>-schemas`, key = the layout id, value = `{"topic": ..., "schema": <block>}`).
 */

/** Debezium's placeholder for an unchanged TOASTed value; `source.unchanged` names those columns exactly. */
export const UNAVAILABLE = '__debezium_unavailable_value';
const OPS = { R: 'r', I: 'c', U: 'u', D: 'd', T: 't' } as const;
const SLAB_BYTES = 1 << 20;
/** Slabs kept for reuse: two 10k-row batches of ~3.5 KB events. */
const MAX_POOLED_SLABS = 72;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Every value starts with the schema block and then the payload: the decoder finds the payload by these bytes. */
export const SCHEMA_START = '{"schema":';
export const PAYLOAD_AT = ',"payload":';

/** Where events carry their schema block: in every event, or on the schema topic by reference (`source.layout`). */
export type EventSchemaMode = 'embedded' | 'topic';

/** A schema block to publish on the schema topic before the first event that refers to it. */
export interface LayoutRecord {
  id: string;
  /** `{"topic": "<prefix>.<schema>.<table>", "schema": <block>}`. */
  value: string;
}

/** One message ready for the producer: explicit partition, key and value as UTF-8 JSON bytes. */
export interface Encoded {
  topic: string;
  partition: number;
  key: Buffer | undefined;
  value: Buffer;
}

interface TableParts {
  topic: string;
  keys: number[];
  /** UTF-8 bytes of each key column's `"name":` (`,"name":` but the first). */
  keyNames: Buffer[];
  /** UTF-8 bytes of each column's `"name":`, and of `,"name":` (every column but the first). */
  nameBytes: Buffer[];
  /** `{"version":...,"ts_ms":` of the source block. */
  head: Buffer;
  /** `,"db":"","schema":...,"txId":`. */
  where: Buffer;
  /** `,"layout":"<id>"` in payload-only mode, else empty. */
  layoutRef: Buffer;
  /** Bytes of a value at most besides its row images and `unchanged` list (constant parts, numbers). */
  fixed: number;
}

/** The schema topic of payload-only events: `<prefix>-schemas` (outside the `<prefix>.*` data topics). */
export function schemaTopicName(prefix: string): string {
  return `${prefix}-schemas`;
}

/** `<prefix>.<schema>.<table>`. */
export function topicName(prefix: string, table: TableSchema): string {
  return `${prefix}.${table.schema}.${table.table}`;
}

/** Printable ASCII without `"` and `\\`: its JSON string is the text in quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function text(value: TupleValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (value === UNCHANGED) return UNAVAILABLE;
  let s = '\\x';
  for (const b of value) s += HEX[b];
  return s;
}

/**
 * Caches the per-table schema block as bytes (`{"schema":...,"payload":`): it is the same ~3.4 KB in
 * every message of a table, so it is serialized and UTF-8 encoded once per layout and only copied.
 */
export class EventEncoder {
  private readonly schemas = new Map<TableSchema, Buffer>();
  private readonly layoutRecords = new Map<TableSchema, LayoutRecord>();
  private readonly tableParts = new Map<TableSchema, TableParts>();
  private point = 0n;
  private readonly rowCells = new Cells();
  private readonly oldCells = new Cells();
  private lastCommitUs = -1n;
  private commitText = '';
  /**
   * Values are written into shared 1 MB slabs (one allocation per ~300 events instead of one per event).
   * A batch's slabs go back to a pool once the brokers acknowledged it (`release`): fresh memory costs
   * page faults on first write, about 2 µs per event, more than copying the schema block.
   */
  private slab: Buffer = Buffer.allocUnsafe(0);
  private used = 0;
  private taken: Buffer[] = [];
  private readonly pool: Buffer[] = [];

  constructor(
    private readonly prefix: string,
    private readonly version: string,
    readonly mode: EventSchemaMode = 'embedded',
  ) {}

  private schemaPrefix(t: TableSchema): Buffer {
    const known = this.schemas.get(t);
    if (known) return known;
    const s = this.schemaText(t);
    const prefix = this.mode === 'topic' ? Buffer.alloc(0) : Buffer.from(`${SCHEMA_START}${s}${PAYLOAD_AT}`);
    this.schemas.set(t, prefix);
    return prefix;
  }

  /** The table's schema block as the schema topic holds it, with its id (a hash of the block: equal layouts, equal ids). */
  layout(t: TableSchema): LayoutRecord {
    let r = this.layoutRecords.get(t);
    if (!r) {
      const block = this.schemaText(t);
      const id = createHash('sha256').update(block).digest('hex').slice(0, 24);
      r = { id, value: `{"topic":${JSON.stringify(topicName(this.prefix, t))},"schema":${block}}` };
      this.layoutRecords.set(t, r);
    }
    return r;
  }

  private schemaText(t: TableSchema): string {
    const name = topicName(this.prefix, t);
    const row = {
      type: 'struct',
      optional: true,
      name: `${name}.Value`,
      fields: t.columns.map((c) => ({
        field: c.name,
        type: 'string',
        optional: !c.key,
        parameters: {
          'pg.type_oid': String(c.typeOid), 'pg.type_mod': String(c.typeMod), 'pg.key': String(c.key),
          ...(c.userType ? { 'pg.user_type': c.userType } : {}),
          ...(c.attnum !== undefined ? { 'pg.attnum': String(c.attnum) } : {}),
          ...(c.missing !== undefined ? { 'pg.missing': c.missing } : {}),
          ...(c.hasDefault ? { 'pg.has_default': 'true' } : {}),
        },
      })),
    };
    return JSON.stringify({
      type: 'struct',
      optional: false,
      name: `${name}.Envelope`,
      fields: [
        { ...row, field: 'before' },
        { ...row, field: 'after' },
        { type: 'struct', optional: false, name: 'io.debezium.connector.postgresql.Source', field: 'source', fields: SOURCE_FIELDS },
        { type: 'string', optional: false, field: 'op' },
        { type: 'int64', optional: true, field: 'ts_ms' },
      ],
    });
  }

  /** Per table: each column's `"name":` and the source block's constant parts, as UTF-8 bytes copied into every value. */
  private parts(t: TableSchema): TableParts {
    let p = this.tableParts.get(t);
    if (!p) {
      const names = t.columns.map((c) => `${JSON.stringify(c.name)}:`);
      const head = Buffer.from(`{"version":${JSON.stringify(this.version)},"connector":"postgresql","name":${JSON.stringify(this.prefix)},"ts_ms":`);
      const where = Buffer.from(`,"db":"","schema":${JSON.stringify(t.schema)},"table":${JSON.stringify(t.table)},"txId":`);
      const layoutRef = Buffer.from(this.mode === 'topic' ? `,"layout":${JSON.stringify(this.layout(t).id)}` : '');
      const nameBytes = names.map((n, i) => Buffer.from(i === 0 ? n : `,${n}`));
      let fixed = 512 + head.length + where.length + layoutRef.length;
      for (const n of nameBytes) fixed += 2 * n.length;
      const keys = t.columns.flatMap((c, i) => (c.key ? [i] : []));
      const keyNames = keys.map((i, j) => Buffer.from(j === 0 ? names[i]! : `,${names[i]}`));
      p = { topic: topicName(this.prefix, t), keys, keyNames, nameBytes, head, where, layoutRef, fixed };
      this.tableParts.set(t, p);
    }
    return p;
  }

  /** A row image as JSON bytes at `pos`, columns in attribute order (what JSON.stringify of the object would give). */
  private record(buf: Buffer, pos: number, p: TableParts, row: Row | null): number {
    if (!row) return putAscii(buf, pos, 'null');
    buf[pos++] = 0x7b; // {
    const names = p.nameBytes;
    if (row instanceof Cells) {
      for (let i = 0; i < names.length; i++) {
        pos = putBytes(buf, pos, names[i]!);
        pos = row.put(buf, pos, i);
      }
    } else {
      for (let i = 0; i < names.length; i++) {
        pos = putBytes(buf, pos, names[i]!);
        pos = putCell(buf, pos, row[i]);
      }
    }
    buf[pos++] = 0x7d; // }
    return pos;
  }

  /** Room for `size` bytes in the slab (a new or pooled one when the current one has less). */
  private room(size: number): Buffer {
    if (this.slab.length - this.used < size) {
      this.slab = (size <= SLAB_BYTES ? this.pool.pop() : undefined) ?? Buffer.allocUnsafe(Math.max(SLAB_BYTES, size));
      this.used = 0;
      this.taken.push(this.slab);
    }
    return this.slab;
  }

  /** The message key, the row's primary key columns as a JSON object, written as bytes into the slab. */
  private keyOf(p: TableParts, row: Row): Buffer {
    const keys = p.keys;
    const cells = row instanceof Cells ? row : undefined;
    const values = row as readonly TupleValue[];
    let size = 2;
    for (let j = 0; j < keys.length; j++) size += p.keyNames[j]!.length + (cells ? cells.bound(keys[j]!) : cellBound(values[keys[j]!]));
    const buf = this.room(size);
    const start = this.used;
    let pos = start;
    buf[pos++] = 0x7b; // {
    for (let j = 0; j < keys.length; j++) {
      pos = putBytes(buf, pos, p.keyNames[j]!);
      pos = cells ? cells.put(buf, pos, keys[j]!) : putCell(buf, pos, values[keys[j]!]);
    }
    buf[pos++] = 0x7d; // }
    this.used = pos;
    return buf.subarray(start, pos);
  }

  /** Starts a batch's values in a slab of their own, so the batch's slabs can be reused once it is acknowledged. */
  startBatch(): void {
    this.used = this.slab.length;
    this.taken = [];
  }

  /** The slabs holding the values encoded since `startBatch`. */
  endBatch(): Buffer[] {
    return this.taken;
  }

  /** Slabs whose values the client no longer holds (their send was acknowledged): reused, up to MAX_POOLED_SLABS. */
  release(slabs: Buffer[]): void {
    for (const slab of slabs) if (slab.length === SLAB_BYTES && this.pool.length < MAX_POOLED_SLABS) this.pool.push(slab);
  }

  /** One change as Debezium events: an update that moved the primary key becomes a delete and a create, as Debezium does. */
  encode(c: Change, t: TableSchema, partitions: number, partitionOf: (key: Uint8Array) => number, snapshotPoint: bigint): Encoded[] {
    const out: Encoded[] = [];
    this.encodeInto(out, c, t, partitions, partitionOf, snapshotPoint);
    return out;
  }

  /** `encode`, appending to `out` (no array per change). */
  encodeInto(out: Encoded[], c: Change, t: TableSchema, partitions: number, partitionOf: (key: Uint8Array) => number, snapshotPoint: bigint): void {
    const p = this.parts(t);
    const topic = p.topic;
    this.point = snapshotPoint;
    if (c.op === 'T') {
      // A truncate covers every key: one event per partition, applied once all owned partitions reach it.
      const value = this.value(t, c, 't', null, null, 0);
      for (let partition = 0; partition < partitions; partition++) out.push({ topic, partition, key: undefined, value });
      return;
    }
    // Values kept as pgoutput's bytes (src/change/wire.ts) are written from those bytes, with no string per value.
    const wire = c.wire;
    const row: Row = wire ? this.rowCells.scan(wire.bytes, wire.row) : c.row;
    const old: Row | undefined = wire ? (wire.oldKey >= 0 ? this.oldCells.scan(wire.bytes, wire.oldKey) : undefined) : c.oldKey;
    if (c.op === 'U' && old) {
      const oldKey = this.keyOf(p, old);
      const newKey = this.keyOf(p, row);
      if (!oldKey.equals(newKey)) {
        out.push(
          { topic, partition: partitionOf(oldKey), key: oldKey, value: this.value(t, c, 'd', old, null, 0) },
          { topic, partition: partitionOf(newKey), key: newKey, value: this.value(t, c, 'c', null, row, 1) },
        );
        return;
      }
    }
    const key = this.keyOf(p, row);
    const op = OPS[c.op];
    const value = c.op === 'D' ? this.value(t, c, op, row, null, 0) : this.value(t, c, op, null, row, 0);
    out.push({ topic, partition: partitionOf(key), key, value });
  }

  private value(
    t: TableSchema,
    c: Change,
    op: string,
    before: Row | null,
    after: Row | null,
    sub: number,
  ): Buffer {
    const p = this.parts(t);
    let unchanged: string[] | undefined;
    if (after instanceof Cells) {
      for (let i = 0; i < after.n; i++) if (after.kind[i] === 0x75) (unchanged ??= []).push(t.columns[i]!.name); // 'u'
    } else if (after) for (let i = 0; i < after.length; i++) if (after[i] === UNCHANGED) (unchanged ??= []).push(t.columns[i]!.name);
    // ducktail's order key inside a partition (dedup of a producer's retries): snapshot events sort at
    // their slot's consistent point (a reset first), streamed ones at their commit LSN.
    const posLsn = Number(c.lsn === 0n ? this.point : c.lsn);
    const posOrd = c.lsn === 0n ? (c.op === 'T' ? 0 : c.seq * 2 + 2) : c.seq * 2 + sub;
    if (c.commitTimeUs !== this.lastCommitUs) {
      // Events of one transaction share their commit time: its text is made once (BigInt division and conversions).
      this.lastCommitUs = c.commitTimeUs;
      this.commitText = `${Number(c.commitTimeUs / 1000n)},"ts_us":${Number(c.commitTimeUs)}`;
    }
    const unchangedText = unchanged === undefined ? '[]' : JSON.stringify(unchanged);
    const prefix = this.schemaPrefix(t);
    // The value is written as bytes straight into the slab (no JSON string to build, flatten and encode):
    // room for it at most, every string value counted at 6 bytes a UTF-16 unit (JSON's `\u00XX`; UTF-8 takes 3 at most).
    const size = prefix.length + p.fixed + this.commitText.length + 3 * unchangedText.length + rowBound(before, p.nameBytes.length) + rowBound(after, p.nameBytes.length);
    const buf = this.room(size);
    const start = this.used;
    let pos = start;
    if (prefix.length > 0) pos += prefix.copy(buf, pos);
    pos = putAscii(buf, pos, '{"before":');
    pos = this.record(buf, pos, p, before);
    pos = putAscii(buf, pos, ',"after":');
    pos = this.record(buf, pos, p, after);
    pos = putAscii(buf, pos, ',"source":');
    pos = putBytes(buf, pos, p.head);
    pos = putAscii(buf, pos, this.commitText);
    pos = putAscii(buf, pos, c.op === 'R' ? ',"snapshot":"true"' : ',"snapshot":"false"');
    pos = putBytes(buf, pos, p.where);
    pos = c.xid === undefined || c.xid === null ? putAscii(buf, pos, 'null') : putNumber(buf, pos, c.xid);
    pos = putAscii(buf, pos, ',"lsn":');
    pos = putNumber(buf, pos, Number(c.lsn));
    pos = putAscii(buf, pos, ',"seq":');
    pos = putNumber(buf, pos, c.seq);
    pos = putAscii(buf, pos, ',"pos_lsn":');
    pos = putNumber(buf, pos, posLsn);
    pos = putAscii(buf, pos, ',"pos_ord":');
    pos = putNumber(buf, pos, posOrd);
    pos = putAscii(buf, pos, ',"unchanged":');
    pos = unchanged === undefined ? putAscii(buf, pos, '[]') : pos + buf.write(unchangedText, pos);
    pos = putBytes(buf, pos, p.layoutRef);
    pos = putAscii(buf, pos, '},"op":"');
    pos = putAscii(buf, pos, op);
    pos = putAscii(buf, pos, '","ts_ms":');
    pos = putNumber(buf, pos, Date.now());
    buf[pos++] = 0x7d; // the payload's closing brace
    if (prefix.length > 0) buf[pos++] = 0x7d; // the envelope's
    this.used = pos;
    return buf.subarray(start, pos);
  }
}

/** Most bytes a row image takes (see `value`). */
function rowBound(row: Row | null, columns: number): number {
  if (!row) return 4;
  // Columns past the row's values are written as null.
  let n = 2 + 4 * columns;
  if (row instanceof Cells) for (let i = 0; i < row.n; i++) n += row.bound(i);
  else for (let i = 0; i < row.length; i++) n += cellBound(row[i]);
  return n;
}

/** A row's values: strings (Change.row) or pgoutput's bytes (Change.wire, scanned). */
type Row = readonly TupleValue[] | Cells;

const NO_BYTES = new Uint8Array(0);
const UNAVAILABLE_JSON = JSON.stringify(UNAVAILABLE);
/** JSON's escape of each byte below 0x20, as JSON.stringify writes it (`\n`, `\u001f`). */
const ESCAPES = Array.from({ length: 0x20 }, (_, b) => Buffer.from(JSON.stringify(String.fromCharCode(b)).slice(1, -1), 'latin1'));
const QUOTE_ESCAPE = Buffer.from('\\"', 'latin1');
const BACKSLASH_ESCAPE = Buffer.from('\\\\', 'latin1');
const HEX_CODES = Buffer.from('0123456789abcdef', 'latin1');

/**
 * A TupleData (src/change/wire.ts) scanned once per row: each value's kind ('n', 'u', 't', 'b') and where its
 * bytes are. The encoder keeps two and rescans them for every change (no allocation per row).
 */
class Cells {
  bytes: Uint8Array = NO_BYTES;
  n = 0;
  kind = new Uint8Array(16);
  start = new Int32Array(16);
  len = new Int32Array(16);

  scan(bytes: Uint8Array, at: number): this {
    const n = (bytes[at]! << 8) | bytes[at + 1]!;
    if (n > this.kind.length) {
      this.kind = new Uint8Array(n);
      this.start = new Int32Array(n);
      this.len = new Int32Array(n);
    }
    this.bytes = bytes;
    this.n = n;
    let pos = at + 2;
    for (let i = 0; i < n; i++) {
      const kind = bytes[pos++]!;
      this.kind[i] = kind;
      if (kind === 0x74 || kind === 0x62) { // 't', 'b'
        const len = ((bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!) >>> 0;
        this.start[i] = pos + 4;
        this.len[i] = len;
        pos += 4 + len;
      }
    }
    return this;
  }

  /** Most bytes value `i` takes as JSON: 6 a byte (`\u00XX`), bytea's hex 2 a byte. */
  bound(i: number): number {
    if (i >= this.n) return 4;
    const kind = this.kind[i];
    return kind === 0x74 ? 6 * this.len[i]! + 2 : kind === 0x62 ? 2 * this.len[i]! + 8 : kind === 0x75 ? UNAVAILABLE.length + 2 : 4;
  }

  /** Value `i` as JSON at `pos` (as `putCell` writes its string): text escaped, UTF-8 copied as it is. */
  put(buf: Buffer, pos: number, i: number): number {
    if (i >= this.n) return putAscii(buf, pos, 'null');
    const kind = this.kind[i];
    if (kind === 0x6e) return putAscii(buf, pos, 'null'); // 'n'
    if (kind === 0x75) return putAscii(buf, pos, UNAVAILABLE_JSON); // 'u'
    const bytes = this.bytes;
    const start = this.start[i]!;
    const end = start + this.len[i]!;
    buf[pos++] = 0x22; // "
    if (kind === 0x62) { // 'b': the text `\x` and hex, as JSON
      buf[pos++] = 0x5c;
      buf[pos++] = 0x5c;
      buf[pos++] = 0x78;
      for (let j = start; j < end; j++) {
        const b = bytes[j]!;
        buf[pos++] = HEX_CODES[b >> 4]!;
        buf[pos++] = HEX_CODES[b & 15]!;
      }
    } else {
      for (let j = start; j < end; j++) {
        const b = bytes[j]!;
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) buf[pos++] = b;
        else pos = putBytes(buf, pos, b === 0x22 ? QUOTE_ESCAPE : b === 0x5c ? BACKSLASH_ESCAPE : ESCAPES[b]!);
      }
    }
    buf[pos++] = 0x22;
    return pos;
  }
}

/** Most bytes a value takes as JSON: 6 a UTF-16 unit (`\\u00XX`), bytea's hex 2 a byte. */
function cellBound(v: TupleValue | undefined): number {
  return typeof v === 'string' ? 6 * v.length + 2 : v === null || v === undefined ? 4 : v === UNCHANGED ? UNAVAILABLE.length + 2 : 2 * v.length + 8;
}

/** A value as JSON: its text as a string, or null. */
function putCell(buf: Buffer, pos: number, v: TupleValue | undefined): number {
  if (typeof v === 'string') return putString(buf, pos, v);
  if (v === null || v === undefined) return putAscii(buf, pos, 'null');
  return putString(buf, pos, text(v)!);
}

/** Text known to be ASCII (JSON punctuation, digits) as bytes at `pos`. */
function putAscii(buf: Buffer, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
  return pos;
}

function putBytes(buf: Buffer, pos: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) buf[pos++] = b[i]!;
  return pos;
}

/** A number as JSON text (what a template string gives): digits for a safe non-negative integer, else `String`. */
function putNumber(buf: Buffer, pos: number, n: number): number {
  if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER && Math.floor(n) === n)) return putAscii(buf, pos, String(n));
  let digits = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
  let at = pos + digits;
  const end = at;
  do {
    const q = Math.floor(n / 10);
    buf[--at] = 0x30 + (n - q * 10);
    n = q;
  } while (n > 0);
  return end;
}

/**
 * A string as JSON (`JSON.stringify(s)` in UTF-8) at `pos`: printable ASCII without `"` and `\\` (most
 * values) is copied as is; anything else is written as JSON.stringify gives it.
 */
function putString(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n > 64) {
    if (!PLAIN.test(s)) return pos + buf.write(JSON.stringify(s), pos);
    buf[pos++] = 0x22;
    pos += buf.write(s, pos, 'latin1');
    buf[pos++] = 0x22;
    return pos;
  }
  const start = pos;
  buf[pos++] = 0x22;
  for (let i = 0; i < n; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 0x20 || ch > 0x7e || ch === 0x22 || ch === 0x5c) return start + buf.write(JSON.stringify(s), start);
    buf[pos++] = ch;
  }
  buf[pos++] = 0x22;
  return pos;
}

const SOURCE_FIELDS = [
  { type: 'string', optional: false, field: 'version' },
  { type: 'string', optional: false, field: 'connector' },
  { type: 'string', optional: false, field: 'name' },
  { type: 'int64', optional: false, field: 'ts_ms' },
  { type: 'int64', optional: true, field: 'ts_us' },
  { type: 'string', optional: true, field: 'snapshot' },
  { type: 'string', optional: false, field: 'db' },
  { type: 'string', optional: false, field: 'schema' },
  { type: 'string', optional: false, field: 'table' },
  { type: 'int64', optional: true, field: 'txId' },
  { type: 'int64', optional: true, field: 'lsn' },
  { type: 'int64', optional: false, field: 'seq' },
  { type: 'int64', optional: false, field: 'pos_lsn' },
  { type: 'int64', optional: false, field: 'pos_ord' },
  { type: 'array', optional: true, field: 'unchanged', items: { type: 'string', optional: false } },
  { type: 'string', optional: true, field: 'layout' },
];
