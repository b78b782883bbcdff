/**
 * Decoder of the pgoutput logical replication protocol (versions 1 and 2) and of the
 * streaming replication CopyData messages that carry it. Pure functions over bytes.
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 * https://www.postgresql.org/docs/current/protocol-replication.html
 */
import { isUtf8 } from 'node:buffer';
import { AppError } from '../errors.ts';
import { type ColumnSchema, type TupleData, UNCHANGED, type WireRows } from '../change/index.ts';
import type { Delete, Insert, PgoutputMessage, ReplicationMessage, Update } from './types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** Converts a protocol timestamp (µs since 2000-01-01) to µs since the Unix epoch. */
export function pgEpochUsToUnixUs(pgUs: bigint): bigint {
  return pgUs + PG_EPOCH_OFFSET_US;
}

/**
 * One position counter walking a message. Every read is bounds-checked: a truncated or corrupted
 * message fails with PGOUTPUT_MALFORMED naming the message type and the byte offset, never a guess.
 */
/** Node's and Bun's Buffer method behind toString('utf8', start, end) (invalid bytes become U+FFFD). */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

class Reader {
  pos = 0;
  /** A Buffer view of the message: its integer reads and UTF-8 slicing need no per-call views. */
  private readonly buf: Buffer;
  constructor(
    bytes: Uint8Array,
    /** Message type byte; errors name it, e.g. "Insert ('I')". */
    private readonly tag: number,
    /** Where the message starts in `bytes` (errors give offsets and sizes from there). */
    private readonly base = 0,
  ) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.buf.length;
  }
  /** An error about the message at `at` (default: the current offset). */
  fail(what: string, at = this.pos): AppError {
    return new AppError(
      'PGOUTPUT_MALFORMED',
      `malformed ${typeName(this.tag)} message (${this.buf.length - this.base} bytes): ${what} at byte offset ${at - this.base}`,
    );
  }
  private need(n: number, what: string): number {
    if (this.pos + n > this.buf.length) {
      throw this.fail(`truncated: ${what} needs ${n} bytes, ${this.buf.length - this.pos} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(what = 'byte'): number {
    return this.buf[this.need(1, what)]!;
  }
  i16(what = 'int16'): number {
    return this.buf.readInt16BE(this.need(2, what));
  }
  i32(what = 'int32'): number {
    return this.buf.readInt32BE(this.need(4, what));
  }
  u32(what = 'int32'): number {
    return this.buf.readUInt32BE(this.need(4, what));
  }
  u64(what = 'int64'): bigint {
    return this.buf.readBigUInt64BE(this.need(8, what));
  }
  i64(what = 'int64'): bigint {
    return this.buf.readBigInt64BE(this.need(8, what));
  }
  /**
   * `n` bytes of UTF-8 text, refused (not replaced) when invalid. Decoded leniently first (fast);
   * only a result holding U+FFFD, the replacement character, is checked again strictly.
   */
  columnText(n: number, column: number): string {
    const at = this.pos;
    if (n < 0 || at + n > this.buf.length) this.bytes(n, `text of column ${column}`); // throws
    this.pos = at + n;
    // utf8Slice: what toString('utf8', ...) calls, without its argument handling (~55 vs ~100 ns a value here).
    const s = (this.buf as Utf8Sliceable).utf8Slice(at, at + n);
    if (s.includes('\uFFFD')) this.text(this.buf.subarray(at, at + n), `text of column ${column}`);
    return s;
  }
  /** The message's bytes (a Buffer view). */
  get bytesView(): Buffer {
    return this.buf;
  }
  /** Set by `skipTuple`: a text value's UTF-8 is checked on its own. */
  perValue = false;
  /** Set by `skipTuple`: a text value has a byte >= 0x80 (else all of them are ASCII, valid UTF-8). */
  nonAscii = false;
  /** Whether [from, to) is all ASCII (then valid UTF-8): a JS loop is cheaper than a native call on a view for short values. */
  ascii(from: number, to: number): boolean {
    const buf = this.buf;
    let acc = 0;
    for (let i = from; i < to; i++) acc |= buf[i]!;
    return acc < 0x80;
  }
  /** Refuses the tuple at `at` (`n` values, bounds checked) if one of its text values is not valid UTF-8. */
  checkTexts(at: number, n: number): void {
    let pos = at + 2;
    for (let i = 0; i < n; i++) {
      const kind = this.buf[pos++];
      if (kind !== 0x74 && kind !== 0x62) continue;
      const len = this.buf.readInt32BE(pos);
      pos += 4;
      if (kind === 0x74 && !isUtf8(this.buf.subarray(pos, pos + len))) throw this.fail(`text of column ${i + 1} is not valid UTF-8`, pos + len);
      pos += len;
    }
  }
  /** Bytes left to read. */
  get left(): number {
    return this.buf.length - this.pos;
  }
  /** A null-terminated UTF-8 string. */
  cstring(what = 'string'): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw this.fail(`${what} without its terminating zero byte`);
    const s = this.text(this.buf.subarray(this.pos, end), what);
    this.pos = end + 1;
    return s;
  }
  /** UTF-8 text, refused (not replaced) when invalid. */
  text(bytes: Uint8Array, what: string): string {
    try {
      return utf8.decode(bytes);
    } catch {
      throw this.fail(`${what} is not valid UTF-8`);
    }
  }
  bytes(n: number, what = 'value'): Uint8Array {
    if (n < 0) throw this.fail(`negative length ${n} of ${what}`, this.pos - 4);
    const at = this.need(n, what);
    return this.buf.subarray(at, at + n);
  }
  /** A flag byte that must be 0 or 1. */
  bool(what: string): boolean {
    const at = this.pos;
    const b = this.u8(what);
    if (b > 1) throw this.fail(`${what} is ${b}, expected 0 or 1`, at);
    return b === 1;
  }
  rest(): Uint8Array {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
  /** Refuses bytes left over after the last field: the message was not what its type says. */
  end(): void {
    if (this.pos !== this.buf.length) throw this.fail(`${this.buf.length - this.pos} unexpected bytes after the last field`);
  }
}

/** TupleData: Int16 column count, then per column 'n' null, 'u' unchanged TOAST, 't' text, 'b' binary. */
function tupleData(r: Reader): TupleData {
  const at = r.pos;
  const n = r.i16('column count');
  if (n < 0) throw r.fail(`negative column count ${n}`, at);
  const out: TupleData = new Array(n);
  for (let i = 0; i < n; i++) {
    const kindAt = r.pos;
    // Error texts are built only when a read fails: this loop runs for every value of every row.
    const kind = r.left >= 1 ? r.u8() : r.u8(`kind of column ${i + 1}`);
    switch (kind) {
      case 0x6e: // 'n'
        out[i] = null;
        break;
      case 0x75: // 'u'
        out[i] = UNCHANGED;
        break;
      case 0x74: // 't'
        out[i] = r.columnText(r.left >= 4 ? r.i32() : r.i32(`length of column ${i + 1}`), i + 1);
        break;
      case 0x62: // 'b'
        out[i] = r.bytes(r.i32(`length of column ${i + 1}`), `value of column ${i + 1}`).slice();
        break;
      default:
        throw r.fail(`unknown kind 0x${kind.toString(16)} of column ${i + 1} (expected 'n', 'u', 't' or 'b')`, kindAt);
    }
  }
  return out;
}

/**
 * Walks a TupleData without making its values (src/change/wire.ts): the same checks as `tupleData` (bounds,
 * kinds), the values left as bytes. Returns the column count; `r.perValue` is set when the message's UTF-8
 * cannot be checked in one piece (see `decodeRowWire`).
 */
function skipTuple(r: Reader): number {
  const at = r.pos;
  const n = r.i16('column count');
  if (n < 0) throw r.fail(`negative column count ${n}`, at);
  for (let i = 0; i < n; i++) {
    const kindAt = r.pos;
    const kind = r.left >= 1 ? r.u8() : r.u8(`kind of column ${i + 1}`);
    if (kind === 0x6e || kind === 0x75) continue; // 'n', 'u'
    if (kind !== 0x74 && kind !== 0x62) {
      throw r.fail(`unknown kind 0x${kind.toString(16)} of column ${i + 1} (expected 'n', 'u', 't' or 'b')`, kindAt);
    }
    const len = r.left >= 4 ? r.i32() : r.i32(`length of column ${i + 1}`);
    if (kind === 0x62 || (len & 0x80808080) !== 0) r.perValue = true;
    if (len < 0 || len > r.left) r.bytes(len, kind === 0x74 ? `text of column ${i + 1}` : `value of column ${i + 1}`); // throws
    if (kind === 0x74 && !r.nonAscii) r.nonAscii = !r.ascii(r.pos, r.pos + len);
    r.pos += len;
  }
  return n;
}

/** A tuple marker byte that must be `a` or `b` (as `marker`, without making a string). */
function markerByte(r: Reader, what: string, a: number, b = a): number {
  const at = r.pos;
  const m = r.u8(what);
  if (m === a || m === b) return m;
  r.pos = at;
  marker(r, a === b ? String.fromCharCode(a) : String.fromCharCode(a, b), what); // throws
  return m;
}

/** The values of an Insert, Update or Delete left as bytes (`decodeRowWire`). */
export interface WireRowMessage {
  op: 'I' | 'U' | 'D';
  relationId: number;
  /** For 'D', `row` is the old tuple (as Change.row); for 'U', `oldKey` the old key or row when sent. */
  rows: WireRows;
  /** Column counts of `row` and of `oldKey` (-1 = none). */
  count: number;
  oldCount: number;
}

/**
 * Decodes an Insert, Update or Delete (outside a streamed transaction) with its values left as bytes in
 * `data`: checked as `decodePgoutput` checks them, without a JS string per value. The message starts at
 * `start` of `data` and runs to its end (the source passes the XLogData, the message at 25, without a view).
 */
export function decodeRowWire(data: Uint8Array, start = 0): WireRowMessage {
  const tag = data[start]!;
  const r = new Reader(data, tag, start);
  r.pos = start + 1;
  const relationId = r.u32('relation id');
  const bytes = r.bytesView;
  let m: WireRowMessage;
  if (tag === 0x49) { // 'I' Insert
    markerByte(r, 'new tuple marker', 0x4e); // 'N'
    const at = r.pos;
    const count = skipTuple(r);
    m = { op: 'I', relationId, rows: { bytes, row: at, rowEnd: r.pos, oldKey: -1, oldKeyEnd: -1 }, count, oldCount: -1 };
  } else if (tag === 0x55) { // 'U' Update
    const kindAt = r.pos;
    const kind = r.u8('tuple marker');
    let oldAt = -1;
    let oldEnd = -1;
    let oldCount = -1;
    if (kind === 0x4b || kind === 0x4f) { // 'K', 'O'
      oldAt = r.pos;
      oldCount = skipTuple(r);
      oldEnd = r.pos;
      markerByte(r, 'new tuple marker', 0x4e);
    } else if (kind !== 0x4e) {
      r.pos = kindAt;
      marker(r, 'KON', 'tuple marker'); // throws
    }
    const at = r.pos;
    const count = skipTuple(r);
    m = { op: 'U', relationId, rows: { bytes, row: at, rowEnd: r.pos, oldKey: oldAt, oldKeyEnd: oldEnd }, count, oldCount };
  } else if (tag === 0x44) { // 'D' Delete
    markerByte(r, 'old tuple marker', 0x4b, 0x4f); // 'K', 'O'
    const at = r.pos;
    const count = skipTuple(r);
    m = { op: 'D', relationId, rows: { bytes, row: at, rowEnd: r.pos, oldKey: -1, oldKeyEnd: -1 }, count, oldCount: -1 };
  } else {
    throw new AppError('PGOUTPUT_UNKNOWN_MESSAGE', `decodeRowWire: ${typeName(tag)} is not Insert, Update or Delete`);
  }
  r.end();
  // Text must be valid UTF-8: nothing to check when it is all ASCII. Else one check of the whole message when
  // every text value sits between ASCII bytes (its kind byte and lengths with each byte under 0x80 before it,
  // the next kind byte, a tuple marker or the end after it): then no multi-byte sequence crosses a value's
  // edge. Else each text value on its own.
  if (r.nonAscii && (r.perValue || !isUtf8(start === 0 ? bytes : bytes.subarray(start)))) {
    const rows = m.rows;
    if (rows.oldKey >= 0) r.checkTexts(rows.oldKey, m.oldCount);
    r.checkTexts(rows.row, m.count);
  }
  return m;
}

const NAMES: Record<number, string> = {
  0x42: 'Begin', 0x43: 'Commit', 0x4f: 'Origin', 0x52: 'Relation', 0x59: 'Type', 0x49: 'Insert', 0x55: 'Update',
  0x44: 'Delete', 0x54: 'Truncate', 0x4d: 'Message', 0x53: 'Stream Start', 0x45: 'Stream Stop', 0x63: 'Stream Commit',
  0x41: 'Stream Abort', 0x77: 'XLogData', 0x6b: 'Primary keepalive',
};

function typeName(tag: number): string {
  return `${NAMES[tag] ?? 'unknown'} ('${String.fromCharCode(tag)}')`;
}

/** A tuple marker byte ('N', 'K', 'O') that must be one of `allowed`. */
function marker(r: Reader, allowed: string, what: string): string {
  const at = r.pos;
  const b = r.u8(what);
  const c = String.fromCharCode(b);
  if (!allowed.includes(c)) throw r.fail(`${what} is 0x${b.toString(16)}, expected ${[...allowed].map((x) => `'${x}'`).join(' or ')}`, at);
  return c;
}

/**
 * Decodes one pgoutput message. `inStream` must be true between Stream Start and Stream Stop
 * (protocol v2): there, data messages carry the transaction's xid first. The whole message must be
 * consumed: a truncated, extended or corrupted message is refused with its type and byte offset.
 */
export function decodePgoutput(data: Uint8Array, opts: { inStream?: boolean } = {}): PgoutputMessage {
  if (data.length === 0) throw new AppError('PGOUTPUT_MALFORMED', 'malformed pgoutput message: empty (0 bytes)');
  const tag = data[0]!;
  const r = new Reader(data, tag);
  r.pos = 1;
  const msg = decodeBody(r, tag, opts.inStream === true);
  r.end();
  return msg;
}

function withXid<T extends { xid?: number }>(m: T, xid: number | undefined): T {
  if (xid !== undefined) m.xid = xid;
  return m;
}

function decodeBody(r: Reader, tag: number, inStream: boolean): PgoutputMessage {
  const xid = () => (inStream ? { xid: r.u32('xid') } : {});
  switch (tag) {
    case 0x42: // 'B' Begin
      return { tag: 'Begin', finalLsn: r.u64('final LSN'), commitTime: r.i64('commit time'), xid: r.u32('xid') };
    case 0x43: // 'C' Commit
      return { tag: 'Commit', flags: r.u8('flags'), commitLsn: r.u64('commit LSN'), endLsn: r.u64('end LSN'), commitTime: r.i64('commit time') };
    case 0x4f: // 'O' Origin
      return { tag: 'Origin', commitLsn: r.u64('commit LSN'), name: r.cstring('origin name') };
    case 0x52: { // 'R' Relation
      const x = xid();
      const relationId = r.u32('relation id');
      const schema = r.cstring('schema name');
      const table = r.cstring('table name');
      const identAt = r.pos;
      const replicaIdentity = String.fromCharCode(r.u8('replica identity'));
      if (!'dnfi'.includes(replicaIdentity)) throw r.fail(`replica identity '${replicaIdentity}' is not d, n, f or i`, identAt);
      const nAt = r.pos;
      const n = r.i16('column count');
      if (n < 0) throw r.fail(`negative column count ${n}`, nAt);
      const columns: ColumnSchema[] = [];
      for (let i = 0; i < n; i++) {
        const flagsAt = r.pos;
        const flags = r.u8(`flags of column ${i + 1}`);
        if (flags > 1) throw r.fail(`flags 0x${flags.toString(16)} of column ${i + 1} (only 1 = key is defined)`, flagsAt);
        columns.push({
          key: flags === 1,
          name: r.cstring(`name of column ${i + 1}`),
          typeOid: r.u32(`type of column ${i + 1}`),
          typeMod: r.i32(`type modifier of column ${i + 1}`),
        });
      }
      return { tag: 'Relation', ...x, relationId, schema, table, replicaIdentity, columns };
    }
    case 0x59: { // 'Y' Type
      const x = xid();
      return { tag: 'Type', ...x, typeOid: r.u32('type oid'), schema: r.cstring('schema name'), name: r.cstring('type name') };
    }
    // The row messages (every change) set the xid without a spread: it costs per message.
    case 0x49: { // 'I' Insert
      const x = inStream ? r.u32('xid') : undefined;
      const relationId = r.u32('relation id');
      marker(r, 'N', 'new tuple marker');
      return withXid<Insert>({ tag: 'Insert', relationId, newTuple: tupleData(r) }, x);
    }
    case 0x55: { // 'U' Update
      const x = inStream ? r.u32('xid') : undefined;
      const relationId = r.u32('relation id');
      const kind = marker(r, 'KON', 'tuple marker');
      if (kind === 'K' || kind === 'O') {
        const oldTuple = tupleData(r);
        marker(r, 'N', 'new tuple marker');
        return withXid<Update>({ tag: 'Update', relationId, oldKind: kind, oldTuple, newTuple: tupleData(r) }, x);
      }
      return withXid<Update>({ tag: 'Update', relationId, newTuple: tupleData(r) }, x);
    }
    case 0x44: { // 'D' Delete
      const x = inStream ? r.u32('xid') : undefined;
      const relationId = r.u32('relation id');
      const kind = marker(r, 'KO', 'old tuple marker') as 'K' | 'O';
      return withXid<Delete>({ tag: 'Delete', relationId, oldKind: kind, oldTuple: tupleData(r) }, x);
    }
    case 0x54: { // 'T' Truncate
      const x = xid();
      const nAt = r.pos;
      const n = r.u32('relation count');
      const options = r.u8('options');
      if (n * 4 > r.length - r.pos) throw r.fail(`relation count ${n} does not fit in the message`, nAt);
      const relationIds: number[] = [];
      for (let i = 0; i < n; i++) relationIds.push(r.u32(`relation ${i + 1}`));
      return { tag: 'Truncate', ...x, options, relationIds };
    }
    case 0x4d: { // 'M' Message
      const x = xid();
      const flags = r.u8('flags');
      const lsn = r.u64('LSN');
      const prefix = r.cstring('prefix');
      const content = r.bytes(r.i32('content length'), 'content').slice();
      return { tag: 'Message', ...x, flags, lsn, prefix, content };
    }
    case 0x53: // 'S' Stream Start
      return { tag: 'StreamStart', xid: r.u32('xid'), firstSegment: r.bool('first segment') };
    case 0x45: // 'E' Stream Stop
      return { tag: 'StreamStop' };
    case 0x63: // 'c' Stream Commit
      return {
        tag: 'StreamCommit', xid: r.u32('xid'), flags: r.u8('flags'), commitLsn: r.u64('commit LSN'),
        endLsn: r.u64('end LSN'), commitTime: r.i64('commit time'),
      };
    case 0x41: { // 'A' Stream Abort
      const xidTop = r.u32('xid');
      const subXid = r.u32('subtransaction xid');
      // Protocol v4 (parallel streaming) adds the abort LSN and time.
      if (r.pos < r.length) return { tag: 'StreamAbort', xid: xidTop, subXid, abortLsn: r.u64('abort LSN'), abortTime: r.i64('abort time') };
      return { tag: 'StreamAbort', xid: xidTop, subXid };
    }
    default:
      throw new AppError(
        'PGOUTPUT_UNKNOWN_MESSAGE',
        `unknown pgoutput message byte 0x${tag.toString(16)} ('${String.fromCharCode(tag)}') at byte offset 0: ` +
          'is the server newer than this ducktail? Upgrade ducktail or request an older proto_version',
      );
  }
}

/** Decodes one CopyData payload of START_REPLICATION: 'w' XLogData or 'k' Primary keepalive. */
export function decodeReplication(data: Uint8Array): ReplicationMessage {
  if (data.length === 0) throw new AppError('REPLICATION_MALFORMED', 'malformed replication message: empty (0 bytes)');
  const tag = data[0]!;
  const r = new Reader(data, tag);
  r.pos = 1;
  switch (tag) {
    case 0x77: // 'w' XLogData
      return { tag: 'XLogData', walStart: r.u64('WAL start'), walEnd: r.u64('WAL end'), sendTime: r.i64('send time'), data: r.rest() };
    case 0x6b: { // 'k' Primary keepalive
      const m: ReplicationMessage = {
        tag: 'PrimaryKeepalive', walEnd: r.u64('WAL end'), sendTime: r.i64('send time'), replyRequested: r.bool('reply flag'),
      };
      r.end();
      return m;
    }
    default:
      throw new AppError('REPLICATION_UNKNOWN_MESSAGE', `unknown replication message byte 0x${tag.toString(16)} at byte offset 0`);
  }
}

/** Encodes a Standby status update ('r'): positions written, flushed and applied, the client clock. */
export function encodeStandbyStatusUpdate(s: {
  written: bigint;
  flushed: bigint;
  applied: bigint;
  clockUs: bigint;
  replyRequested: boolean;
}): Uint8Array {
  const out = new Uint8Array(34);
  const v = new DataView(out.buffer);
  v.setUint8(0, 0x72); // 'r'
  v.setBigUint64(1, s.written);
  v.setBigUint64(9, s.flushed);
  v.setBigUint64(17, s.applied);
  v.setBigInt64(25, s.clockUs);
  v.setUint8(33, s.replyRequested ? 1 : 0);
  return out;
}
