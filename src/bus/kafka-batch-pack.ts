import { type Change, type ChangeBatch, type SnapshotMarker, type TableSchema } from '../change/index.ts';
import { encodeTuple, tupleBound, WireChange } from '../change/wire.ts';

/**
 * A ChangeBatch in the form that crosses to the producer's Worker (kafka-produce-worker.ts) cheaply.
 * Structured cloning a batch as it is (10k change objects, each with a row array) cost the sending
 * thread ~1.7-2.0 µs a change; this form is transferred, not copied: the per-change scalars in typed
 * arrays, the values in one byte buffer as pgoutput TupleData (src/change/wire.ts). A change the source
 * kept as pgoutput's bytes (Change.wire) is copied as those bytes, no JS string made on either side;
 * a change with string values (the initial copy) is written as UTF-8 natively. Only what the producer
 * reads is carried: tables, changes, snapshot marker, copy point.
 */
export interface PackedBatch {
  /** [id, name, schema]: the id names the sender's TableSchema object, so the receiver keeps one object per layout. */
  tables: [number, string, TableSchema][];
  /** Per change: index into `tables`. */
  table: Uint16Array;
  /** Per change: its op letter. */
  ops: string;
  lsn: BigInt64Array;
  commitUs: BigInt64Array;
  seq: Float64Array;
  /** NaN = no transaction id. */
  xid: Float64Array;
  /** Per change: where its row's TupleData starts in `rows`, where its old key's does (-1 = none), and its end. */
  at: Int32Array;
  /** Every change's row (and old key) as TupleData, one after another. */
  rows: Uint8Array;
  snapshot?: SnapshotMarker;
  copyPoint?: bigint;
}

/** Assigns ids to the sender's TableSchema objects (a layout change makes a new object: a new id). */
export class TableIds {
  private readonly ids = new WeakMap<TableSchema, number>();
  private next = 0;

  id(t: TableSchema): number {
    let id = this.ids.get(t);
    if (id === undefined) this.ids.set(t, (id = this.next++));
    return id;
  }
}

export function packBatch(batch: ChangeBatch, ids: TableIds): PackedBatch {
  const names = new Map<string, number>();
  const tables: PackedBatch['tables'] = [];
  for (const [name, t] of batch.tables) {
    names.set(name, tables.length);
    tables.push([ids.id(t), name, t]);
  }
  const changes = batch.changes;
  const n = changes.length;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const c = changes[i]!;
    const w = c.wire;
    if (w) size += w.rowEnd - w.row + (w.oldKey >= 0 ? w.oldKeyEnd - w.oldKey : 0);
    else size += tupleBound(c.row) + (c.oldKey ? tupleBound(c.oldKey) : 0);
  }
  const table = new Uint16Array(n);
  const lsn = new BigInt64Array(n);
  const commitUs = new BigInt64Array(n);
  const seq = new Float64Array(n);
  const xid = new Float64Array(n);
  const at = new Int32Array(3 * n);
  // Its own ArrayBuffer (not a slice of Buffer's shared pool): it is transferred.
  const rows = Buffer.allocUnsafeSlow(size);
  let pos = 0;
  let ops = '';
  let lastName = '';
  let lastIndex = 0;
  for (let i = 0; i < n; i++) {
    const c = changes[i]!;
    if (c.table !== lastName) {
      const found = names.get(c.table);
      // A change of a table the batch has no schema of: the encoder refuses it (BATCH_MISSING_TABLE) on the other side.
      lastIndex = found ?? 0xffff;
      lastName = c.table;
    }
    table[i] = lastIndex;
    ops += c.op;
    lsn[i] = c.lsn;
    commitUs[i] = c.commitTimeUs;
    seq[i] = c.seq;
    xid[i] = c.xid ?? Number.NaN;
    at[3 * i] = pos;
    const w = c.wire;
    if (w) {
      pos = copyBytes(w.bytes, w.row, w.rowEnd, rows, pos);
      if (w.oldKey >= 0) {
        at[3 * i + 1] = pos;
        pos = copyBytes(w.bytes, w.oldKey, w.oldKeyEnd, rows, pos);
      } else at[3 * i + 1] = -1;
    } else {
      pos = encodeTuple(rows, pos, c.row);
      const old = c.oldKey;
      if (old) {
        at[3 * i + 1] = pos;
        pos = encodeTuple(rows, pos, old);
      } else at[3 * i + 1] = -1;
    }
    at[3 * i + 2] = pos;
  }
  const packed: PackedBatch = { tables, table, ops, lsn, commitUs, seq, xid, at, rows };
  if (batch.snapshot) packed.snapshot = batch.snapshot;
  if (batch.copyPoint !== undefined) packed.copyPoint = batch.copyPoint;
  return packed;
}

/** Copies [from, to) of `bytes` to `out` at `pos` (natively, without a view per copy when `bytes` is a Buffer); returns the end. */
function copyBytes(bytes: Uint8Array, from: number, to: number, out: Buffer, pos: number): number {
  if (Buffer.isBuffer(bytes)) return pos + bytes.copy(out, pos, from, to);
  out.set(bytes.subarray(from, to), pos);
  return pos + to - from;
}

/** The buffers to transfer with a packed batch (not copied). */
export function packedTransferables(p: PackedBatch): ArrayBuffer[] {
  return [p.table.buffer, p.lsn.buffer, p.commitUs.buffer, p.seq.buffer, p.xid.buffer, p.at.buffer, p.rows.buffer] as ArrayBuffer[];
}

/**
 * The batch back, for the producer: its changes keep their values as the packed bytes (WireChange), which
 * the encoder writes from. `known` keeps one TableSchema object per sender id: the encoder caches per-table
 * work by object identity.
 */
export function unpackBatch(p: PackedBatch, known: Map<number, TableSchema>): ChangeBatch {
  const tables = new Map<string, TableSchema>();
  const names: string[] = [];
  for (const [id, name, schema] of p.tables) {
    let t = known.get(id);
    if (!t) known.set(id, (t = schema));
    tables.set(name, t);
    names.push(name);
  }
  const n = p.ops.length;
  const changes: Change[] = new Array(n);
  const { at, rows } = p;
  for (let i = 0; i < n; i++) {
    const x = p.xid[i]!;
    const row = at[3 * i]!;
    const oldKey = at[3 * i + 1]!;
    const end = at[3 * i + 2]!;
    const wire = { bytes: rows, row, rowEnd: oldKey >= 0 ? oldKey : end, oldKey, oldKeyEnd: oldKey >= 0 ? end : -1 };
    const table = names[p.table[i]!] ?? '(no schema in the batch)';
    changes[i] = new WireChange(p.ops[i] as Change['op'], table, p.lsn[i]!, p.seq[i]!, p.commitUs[i]!, Number.isNaN(x) ? undefined : x, wire);
  }
  const batch: ChangeBatch = { tables, changes };
  if (p.snapshot) batch.snapshot = p.snapshot;
  if (p.copyPoint !== undefined) batch.copyPoint = p.copyPoint;
  return batch;
}
