/**
 * Encoder of pgoutput messages, the inverse of src/source/pgoutput.ts's decoder, for tests only:
 * the fuzzer checks that every message the decoder accepts encodes back to the very same bytes.
 */
import { type TupleData, UNCHANGED } from '../../src/change/index.ts';
import type { PgoutputMessage } from '../../src/source/types.ts';

class Writer {
  private parts: number[] = [];
  u8(v: number) { this.parts.push(v & 0xff); }
  i16(v: number) { this.u8(v >> 8); this.u8(v); }
  u32(v: number) { this.u8(v >>> 24); this.u8(v >>> 16); this.u8(v >>> 8); this.u8(v); }
  u64(v: bigint) {
    const x = BigInt.asUintN(64, v);
    this.u32(Number(x >> 32n)); this.u32(Number(x & 0xffffffffn));
  }
  bytes(b: Uint8Array) { for (const x of b) this.parts.push(x); }
  cstring(s: string) { this.bytes(new TextEncoder().encode(s)); this.u8(0); }
  char(c: string) { this.u8(c.charCodeAt(0)); }
  done(): Uint8Array { return Uint8Array.from(this.parts); }
}

function tuple(w: Writer, t: TupleData) {
  w.i16(t.length);
  for (const v of t) {
    if (v === null) w.char('n');
    else if (v === UNCHANGED) w.char('u');
    else if (typeof v === 'string') {
      const b = new TextEncoder().encode(v);
      w.char('t'); w.u32(b.length); w.bytes(b);
    } else {
      w.char('b'); w.u32(v.length); w.bytes(v);
    }
  }
}

/** Encodes one message; `inStream` adds the xid of data messages as inside Stream Start/Stop. */
export function encodePgoutput(m: PgoutputMessage): Uint8Array {
  const w = new Writer();
  const xid = (x?: number) => { if (x !== undefined) w.u32(x); };
  switch (m.tag) {
    case 'Begin': w.char('B'); w.u64(m.finalLsn); w.u64(m.commitTime); w.u32(m.xid); break;
    case 'Commit': w.char('C'); w.u8(m.flags); w.u64(m.commitLsn); w.u64(m.endLsn); w.u64(m.commitTime); break;
    case 'Origin': w.char('O'); w.u64(m.commitLsn); w.cstring(m.name); break;
    case 'Relation':
      w.char('R'); xid(m.xid); w.u32(m.relationId); w.cstring(m.schema); w.cstring(m.table); w.char(m.replicaIdentity);
      w.i16(m.columns.length);
      for (const c of m.columns) { w.u8(c.key ? 1 : 0); w.cstring(c.name); w.u32(c.typeOid); w.u32(c.typeMod); }
      break;
    case 'Type': w.char('Y'); xid(m.xid); w.u32(m.typeOid); w.cstring(m.schema); w.cstring(m.name); break;
    case 'Insert': w.char('I'); xid(m.xid); w.u32(m.relationId); w.char('N'); tuple(w, m.newTuple); break;
    case 'Update':
      w.char('U'); xid(m.xid); w.u32(m.relationId);
      if (m.oldKind) { w.char(m.oldKind); tuple(w, m.oldTuple!); }
      w.char('N'); tuple(w, m.newTuple);
      break;
    case 'Delete': w.char('D'); xid(m.xid); w.u32(m.relationId); w.char(m.oldKind); tuple(w, m.oldTuple); break;
    case 'Truncate':
      w.char('T'); xid(m.xid); w.u32(m.relationIds.length); w.u8(m.options);
      for (const id of m.relationIds) w.u32(id);
      break;
    case 'Message':
      w.char('M'); xid(m.xid); w.u8(m.flags); w.u64(m.lsn); w.cstring(m.prefix); w.u32(m.content.length); w.bytes(m.content);
      break;
    case 'StreamStart': w.char('S'); w.u32(m.xid); w.u8(m.firstSegment ? 1 : 0); break;
    case 'StreamStop': w.char('E'); break;
    case 'StreamCommit':
      w.char('c'); w.u32(m.xid); w.u8(m.flags); w.u64(m.commitLsn); w.u64(m.endLsn); w.u64(m.commitTime);
      break;
    case 'StreamAbort':
      w.char('A'); w.u32(m.xid); w.u32(m.subXid);
      if (m.abortLsn !== undefined) { w.u64(m.abortLsn); w.u64(m.abortTime!); }
      break;
  }
  return w.done();
}
