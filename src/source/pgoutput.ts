/**
 * Decoder of the pgoutput logical replication protocol (versions 1 and 2) and of the
 * streaming replication CopyData messages that carry it. Pure functions over bytes.
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 * https://www.postgresql.org/docs/current/protocol-replication.html
 */
import { AppError } from '../errors.ts';
import { type ColumnSchema, type TupleData, UNCHANGED } from '../change/index.ts';
import type { PgoutputMessage, ReplicationMessage } from './types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** Converts a protocol timestamp (µs since 2000-01-01) to µs since the Unix epoch. */
export function pgEpochUsToUnixUs(pgUs: bigint): bigint {
  return pgUs + PG_EPOCH_OFFSET_US;
}

/** One position counter walking a message, as postgres.js does. */
class Reader {
  private pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(): number {
    return this.view.getUint8(this.pos++);
  }
  i16(): number {
    const v = this.view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }
  /** A null-terminated string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw malformed('string without terminator');
    const s = utf8.decode(this.buf.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw malformed(`length ${n} past the end of the message`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Uint8Array {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
}

function malformed(what: string): AppError {
  return new AppError('PGOUTPUT_MALFORMED', `malformed pgoutput message: ${what}`);
}

/** TupleData: Int16 column count, then per column 'n' null, 'u' unchanged TOAST, 't' text, 'b' binary. */
function tupleData(r: Reader): TupleData {
  const n = r.i16();
  const out: TupleData = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    switch (kind) {
      case 0x6e: // 'n'
        out[i] = null;
        break;
      case 0x75: // 'u'
        out[i] = UNCHANGED;
        break;
      case 0x74: // 't'
        out[i] = utf8.decode(r.bytes(r.i32()));
        break;
      case 0x62: // 'b'
        out[i] = r.bytes(r.i32()).slice();
        break;
      default:
        throw malformed(`unknown tuple value kind 0x${kind.toString(16)}`);
    }
  }
  return out;
}

/**
 * Decodes one pgoutput message. `inStream` must be true between Stream Start and Stream Stop
 * (protocol v2): there, data messages carry the transaction's xid first.
 */
export function decodePgoutput(data: Uint8Array, opts: { inStream?: boolean } = {}): PgoutputMessage {
  const r = new Reader(data);
  const tag = r.u8();
  const xid = () => (opts.inStream ? { xid: r.u32() } : {});
  switch (tag) {
    case 0x42: // 'B' Begin
      return { tag: 'Begin', finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32() };
    case 0x43: // 'C' Commit
      return { tag: 'Commit', flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
    case 0x4f: // 'O' Origin
      return { tag: 'Origin', commitLsn: r.u64(), name: r.cstring() };
    case 0x52: { // 'R' Relation
      const x = xid();
      const relationId = r.u32();
      const schema = r.cstring();
      const table = r.cstring();
      const replicaIdentity = String.fromCharCode(r.u8());
      const n = r.i16();
      const columns: ColumnSchema[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        columns.push({ key: (flags & 1) === 1, name: r.cstring(), typeOid: r.u32(), typeMod: r.i32() });
      }
      return { tag: 'Relation', ...x, relationId, schema, table, replicaIdentity, columns };
    }
    case 0x59: { // 'Y' Type
      const x = xid();
      return { tag: 'Type', ...x, typeOid: r.u32(), schema: r.cstring(), name: r.cstring() };
    }
    case 0x49: { // 'I' Insert
      const x = xid();
      const relationId = r.u32();
      const n = r.u8();
      if (n !== 0x4e) throw malformed(`Insert without 'N' tuple (0x${n.toString(16)})`); // 'N'
      return { tag: 'Insert', ...x, relationId, newTuple: tupleData(r) };
    }
    case 0x55: { // 'U' Update
      const x = xid();
      const relationId = r.u32();
      let kind = r.u8();
      let oldKind: 'K' | 'O' | undefined;
      let oldTuple: TupleData | undefined;
      if (kind === 0x4b || kind === 0x4f) { // 'K' old key, 'O' old row
        oldKind = kind === 0x4b ? 'K' : 'O';
        oldTuple = tupleData(r);
        kind = r.u8();
      }
      if (kind !== 0x4e) throw malformed(`Update without 'N' tuple (0x${kind.toString(16)})`);
      const newTuple = tupleData(r);
      return oldKind
        ? { tag: 'Update', ...x, relationId, oldKind, oldTuple, newTuple }
        : { tag: 'Update', ...x, relationId, newTuple };
    }
    case 0x44: { // 'D' Delete
      const x = xid();
      const relationId = r.u32();
      const kind = r.u8();
      if (kind !== 0x4b && kind !== 0x4f) throw malformed(`Delete without 'K' or 'O' tuple (0x${kind.toString(16)})`);
      return { tag: 'Delete', ...x, relationId, oldKind: kind === 0x4b ? 'K' : 'O', oldTuple: tupleData(r) };
    }
    case 0x54: { // 'T' Truncate
      const x = xid();
      const n = r.u32();
      const options = r.u8();
      const relationIds: number[] = [];
      for (let i = 0; i < n; i++) relationIds.push(r.u32());
      return { tag: 'Truncate', ...x, options, relationIds };
    }
    case 0x4d: { // 'M' Message
      const x = xid();
      const flags = r.u8();
      const lsn = r.u64();
      const prefix = r.cstring();
      const content = r.bytes(r.u32()).slice();
      return { tag: 'Message', ...x, flags, lsn, prefix, content };
    }
    case 0x53: // 'S' Stream Start
      return { tag: 'StreamStart', xid: r.u32(), firstSegment: r.u8() === 1 };
    case 0x45: // 'E' Stream Stop
      return { tag: 'StreamStop' };
    case 0x63: // 'c' Stream Commit
      return { tag: 'StreamCommit', xid: r.u32(), flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
    case 0x41: { // 'A' Stream Abort
      const xidTop = r.u32();
      const subXid = r.u32();
      // Protocol v4 (parallel streaming) adds the abort LSN and time.
      if (data.length >= 1 + 8 + 16) return { tag: 'StreamAbort', xid: xidTop, subXid, abortLsn: r.u64(), abortTime: r.i64() };
      return { tag: 'StreamAbort', xid: xidTop, subXid };
    }
    default:
      throw new AppError(
        'PGOUTPUT_UNKNOWN_MESSAGE',
        `unknown pgoutput message byte 0x${tag.toString(16)} ('${String.fromCharCode(tag)}'): ` +
          'is the server newer than this ducktail? Upgrade ducktail or request an older proto_version',
      );
  }
}

/** Decodes one CopyData payload of START_REPLICATION: 'w' XLogData or 'k' Primary keepalive. */
export function decodeReplication(data: Uint8Array): ReplicationMessage {
  const r = new Reader(data);
  const tag = r.u8();
  switch (tag) {
    case 0x77: // 'w' XLogData
      return { tag: 'XLogData', walStart: r.u64(), walEnd: r.u64(), sendTime: r.i64(), data: r.rest() };
    case 0x6b: // 'k' Primary keepalive
      return { tag: 'PrimaryKeepalive', walEnd: r.u64(), sendTime: r.i64(), replyRequested: r.u8() === 1 };
    default:
      throw new AppError('REPLICATION_UNKNOWN_MESSAGE', `unknown replication message byte 0x${tag.toString(16)}`);
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
