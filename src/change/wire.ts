import { type Change, type TupleData, type TupleValue, UNCHANGED, type WireRows } from './index.ts';

/**
 * A change whose values stay pgoutput's bytes (`wire`) until something reads `row` or `oldKey`: the Kafka
 * bus carries the bytes to its producer and writes JSON from them, so no JS string is made per value on
 * the source's thread. Reading `row` or `oldKey` decodes them (once); setting either one decodes both and
 * drops `wire`, so the bytes never disagree with the values.
 */
export class WireChange implements Change {
  wire: WireRows | undefined;
  private decodedRow: TupleData | undefined;
  private decodedOld: TupleData | undefined;

  constructor(
    public op: Change['op'],
    public table: string,
    public lsn: bigint,
    public seq: number,
    public commitTimeUs: bigint,
    public xid: number | undefined,
    wire: WireRows,
  ) {
    this.wire = wire;
  }

  get row(): TupleData {
    if (this.decodedRow === undefined) this.decodedRow = decodeTuple(this.wire!.bytes, this.wire!.row);
    return this.decodedRow;
  }

  set row(v: TupleData) {
    const old = this.oldKey;
    this.decodedRow = v;
    this.decodedOld = old;
    this.wire = undefined;
  }

  get oldKey(): TupleData | undefined {
    if (this.decodedOld === undefined && this.wire && this.wire.oldKey >= 0) this.decodedOld = decodeTuple(this.wire.bytes, this.wire.oldKey);
    return this.decodedOld;
  }

  set oldKey(v: TupleData | undefined) {
    this.decodedRow = this.row;
    this.decodedOld = v;
    this.wire = undefined;
  }
}

/** Node's and Bun's Buffer method behind toString('utf8', start, end). */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The values of a TupleData at `at` (checked already where it was read: bounds, kinds, UTF-8). */
export function decodeTuple(bytes: Uint8Array, at: number): TupleData {
  const buf = asBuffer(bytes) as Utf8Sliceable;
  const n = buf.readInt16BE(at);
  let pos = at + 2;
  const out: TupleValue[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = buf[pos++];
    if (kind === 0x6e) out[i] = null; // 'n'
    else if (kind === 0x75) out[i] = UNCHANGED; // 'u'
    else {
      const len = buf.readInt32BE(pos);
      pos += 4;
      out[i] = kind === 0x74 ? buf.utf8Slice(pos, pos + len) : Uint8Array.prototype.slice.call(buf, pos, pos + len); // 't', 'b'
      pos += len;
    }
  }
  return out;
}

/** Most bytes `encodeTuple` writes for `row`. */
export function tupleBound(row: readonly TupleValue[]): number {
  let n = 2;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    n += typeof v === 'string' ? 5 + 3 * v.length : v === null || v === undefined || v === UNCHANGED ? 1 : 5 + v.length;
  }
  return n;
}

/**
 * `row` as TupleData at `pos` of `buf` (room for `tupleBound(row)` bytes); returns the end. Text is
 * written as UTF-8 (the source's text is valid Unicode: its decoders refuse invalid UTF-8).
 */
export function encodeTuple(buf: Buffer, pos: number, row: readonly TupleValue[]): number {
  buf.writeInt16BE(row.length, pos);
  pos += 2;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (typeof v === 'string') {
      buf[pos] = 0x74; // 't'
      const len = v.length === 0 ? 0 : buf.write(v, pos + 5, 'utf8');
      buf.writeInt32BE(len, pos + 1);
      pos += 5 + len;
    } else if (v === null || v === undefined) buf[pos++] = 0x6e; // 'n'
    else if (v === UNCHANGED) buf[pos++] = 0x75; // 'u'
    else {
      buf[pos] = 0x62; // 'b'
      buf.writeInt32BE(v.length, pos + 1);
      buf.set(v, pos + 5);
      pos += 5 + v.length;
    }
  }
  return pos;
}
