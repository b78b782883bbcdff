import { compressionsAlgorithms, crc32c, Writer } from '@platformatic/kafka';

/**
 * Kafka v2 record batches written straight from our messages: one buffer per partition (header, records,
 * CRC32C; compressed as the client would), stamped with an idempotent producer's id, epoch and base
 * sequence (or -1s without idempotence). Record format: https://kafka.apache.org/documentation/#recordbatch.
 */

/** What a message needs here: its destination, key (text or its UTF-8 bytes, or none) and value bytes. */
export interface RawMessage {
  topic: string;
  partition: number;
  key?: string | Uint8Array | undefined;
  value: Buffer;
}

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Bytes before the first record: base offset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2, last offset delta 4, timestamps 16, producer id 8, epoch 2, base sequence 4, record count 4. */
const HEADER = 61;
/** Where the CRC32C'd part starts (attributes) and where the CRC goes. */
const CRC_FROM = 21;
const CRC_AT = 17;
/** Bytes of `n` as an unsigned varint. */
function uvarintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Zigzag of a 32-bit signed integer (as Kafka's varints are). */
function zigzag(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

function writeUvarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/**
 * The records part of a v2 batch (what compression compresses) for messages `at` of `messages`, into
 * `buf` from `pos`: every record has timestamp delta 0 (the batch's base timestamp), no headers.
 */
function recordsSize(messages: RawMessage[], at: number[], keyBytes: Int32Array): number {
  let size = 0;
  for (let i = 0; i < at.length; i++) {
    const m = messages[at[i]!]!;
    const key = m.key;
    const k = key === undefined ? -1 : typeof key === 'string' ? Buffer.byteLength(key) : key.length;
    keyBytes[i] = k;
    const body = 1 + 1 + uvarintSize(zigzag(i)) + uvarintSize(zigzag(k)) + (k > 0 ? k : 0) + uvarintSize(zigzag(m.value.length)) + m.value.length + 1;
    size += uvarintSize(zigzag(body)) + body;
  }
  return size;
}

function writeRecords(buf: Buffer, pos: number, messages: RawMessage[], at: number[], keyBytes: Int32Array): number {
  for (let i = 0; i < at.length; i++) {
    const m = messages[at[i]!]!;
    const k = keyBytes[i]!;
    const v = m.value.length;
    const body = 1 + 1 + uvarintSize(zigzag(i)) + uvarintSize(zigzag(k)) + (k > 0 ? k : 0) + uvarintSize(zigzag(v)) + v + 1;
    pos = writeUvarint(buf, pos, zigzag(body));
    buf[pos++] = 0; // attributes
    buf[pos++] = 0; // timestamp delta 0
    pos = writeUvarint(buf, pos, zigzag(i)); // offset delta
    pos = writeUvarint(buf, pos, zigzag(k));
    if (k > 0) {
      const key = m.key!;
      if (typeof key === 'string') pos += buf.write(key, pos, 'utf8');
      else for (let b = 0; b < k; b++) buf[pos++] = key[b]!;
    }
    pos = writeUvarint(buf, pos, zigzag(v));
    pos += m.value.copy(buf, pos);
    buf[pos++] = 0; // no headers
  }
  return pos;
}

/** An idempotent producer's identity in a batch's header: producer id, epoch, and the batch's first sequence. */
export interface Stamp {
  producerId: bigint;
  epoch: number;
  baseSequence: number;
}

/** Producer id, epoch and base sequence -1: not idempotent. */
export const NO_STAMP: Stamp = { producerId: -1n, epoch: -1, baseSequence: -1 };

/** `sequence` + `increment`, wrapping past 2^31 - 1 to 0 as Kafka's sequences do (Java's DefaultRecordBatch.incrementSequence). */
export function nextSequence(sequence: number, increment: number): number {
  if (sequence > 0x7fffffff - increment) return increment - (0x7fffffff - sequence) - 1;
  return sequence + increment;
}

/** Writes the producer id, epoch and base sequence of a finished batch and its CRC again. */
export function stampBatch(batch: Buffer, stamp: Stamp): Buffer {
  batch.writeBigInt64BE(stamp.producerId, 43);
  batch.writeInt16BE(stamp.epoch, 51);
  batch.writeInt32BE(stamp.baseSequence, 53);
  // Through a one-buffer Writer: the client's crc32c copies a plain Buffer before its native CRC, not a DynamicBuffer's only buffer.
  batch.writeUInt32BE(crc32c(Writer.create().append(batch.subarray(CRC_FROM)).dynamicBuffer), CRC_AT);
  return batch;
}

/** The 61-byte header in front of `records` bytes already at `batch[HEADER..]`, with the CRC over attributes..end. */
function finishBatch(batch: Buffer, count: number, attributes: number, timestamp: bigint, stamp: Stamp): Buffer {
  batch.writeBigInt64BE(0n, 0); // base offset: the broker assigns
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt32BE(-1, 12); // partition leader epoch: set by the broker
  batch[16] = 2; // magic
  batch.writeInt16BE(attributes, CRC_FROM);
  batch.writeInt32BE(count - 1, 23); // last offset delta
  batch.writeBigInt64BE(timestamp, 27); // base timestamp
  batch.writeBigInt64BE(timestamp, 35); // max timestamp
  batch.writeInt32BE(count, 57);
  return stampBatch(batch, stamp); // producer id, epoch, base sequence, CRC
}

/**
 * Reusable buffers for record batches: a fresh multi-megabyte buffer per partition per send costs the
 * JS thread page faults on first write, more than writing the records. A buffer goes back only after
 * its send was acknowledged (the client copied it into the request long before).
 */
export class BatchBuffers {
  private readonly free: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes = 64 << 20) {}

  /** A buffer of exactly `size` bytes (a view of a pooled one when one is large enough). */
  take(size: number, taken: Buffer[]): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.length >= size && (best < 0 || b.length < this.free[best]!.length)) best = i;
    }
    let whole: Buffer;
    if (best >= 0) {
      whole = this.free.splice(best, 1)[0]!;
      this.bytes -= whole.length;
    } else whole = Buffer.allocUnsafe(Math.max(size, 1 << 20));
    taken.push(whole);
    return whole.subarray(0, size);
  }

  /** Buffers whose send was acknowledged. */
  release(taken: Buffer[]): void {
    for (const b of taken) {
      if (this.bytes + b.length > this.maxBytes) continue;
      this.free.push(b);
      this.bytes += b.length;
    }
  }
}

/** One partition's messages `at` as a v2 record batch, compressed with `compression`. */
export async function recordBatch(
  messages: RawMessage[],
  at: number[],
  compression: Compression,
  timestamp: bigint,
  buffers?: { pool: BatchBuffers; taken: Buffer[] },
  stamp: Stamp = NO_STAMP,
): Promise<Buffer> {
  const keyBytes = new Int32Array(at.length);
  const size = recordsSize(messages, at, keyBytes);
  const alloc = (n: number) => (buffers ? buffers.pool.take(n, buffers.taken) : Buffer.allocUnsafe(n));
  if (compression === 'none') {
    const batch = alloc(HEADER + size);
    writeRecords(batch, HEADER, messages, at, keyBytes);
    return finishBatch(batch, at.length, 0, timestamp, stamp);
  }
  const records = alloc(size);
  writeRecords(records, 0, messages, at, keyBytes);
  const algorithm = compressionsAlgorithms[compression];
  const compressed = 'compress' in algorithm ? await algorithm.compress(records) : algorithm.compressSync(records);
  const batch = Buffer.allocUnsafe(HEADER + compressed.length);
  compressed.copy(batch, HEADER);
  return finishBatch(batch, at.length, algorithm.bitmask, timestamp, stamp);
}

