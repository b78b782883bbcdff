import {
  type API,
  type ClusterMetadata,
  type Connection,
  compressionsAlgorithms,
  crc32c,
  createAPI,
  kGetApi,
  kGetConnection,
  type Producer,
  produceV9,
  produceV10,
  produceV11,
  Writer,
} from '@platformatic/kafka';
import { AppError } from '../errors.ts';

/**
 * The producer's hot path without the client's per-record work: each partition's messages are written
 * straight into one Kafka v2 record batch (one buffer: header, records, CRC32C; compressed as the
 * client would), and one Produce request per leader carries them over the client's own connections,
 * API version negotiation and metadata. The client's `send` builds an object, two header maps, a
 * DynamicBuffer per record and concatenates them twice (for the CRC and for the socket): about 4 µs of
 * the JS thread per message here (docs/PERFORMANCE.md, sixth pass); this is a few tenths of that.
 *
 * Not idempotent: a batch carries producer id -1 (KafkaWriter keeps the client's `send` when
 * `bus.idempotent` is on, which owns the producer id and sequence numbers). Record format:
 * https://kafka.apache.org/documentation/#recordbatch.
 */

/** What a message needs here: its destination, key (text or its UTF-8 bytes, or none) and value bytes. */
export interface RawMessage {
  topic: string;
  partition: number;
  key?: string | Uint8Array | undefined;
  value: Buffer;
}

/** A partition's acknowledged write: the offset of its first message and how many were written. */
export interface Written {
  topic: string;
  partition: number;
  offset: bigint;
  count: number;
}

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Bytes before the first record: base offset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2, last offset delta 4, timestamps 16, producer id 8, epoch 2, base sequence 4, record count 4. */
const HEADER = 61;
/** Where the CRC32C'd part starts (attributes) and where the CRC goes. */
const CRC_FROM = 21;
const CRC_AT = 17;
/** A partition batch of at least this many messages is followed by a yield to I/O (see KafkaWriter's encode). */
const YIELD_AFTER = 1_000;

/** Resolves after pending I/O callbacks ran (a macrotask, unlike `await null`). */
export function yieldToIO(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

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

/** The 61-byte header in front of `records` bytes already at `batch[HEADER..]`, with the CRC over attributes..end. */
function finishBatch(batch: Buffer, count: number, attributes: number, timestamp: bigint): Buffer {
  batch.writeBigInt64BE(0n, 0); // base offset: the broker assigns
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt32BE(-1, 12); // partition leader epoch: set by the broker
  batch[16] = 2; // magic
  batch.writeInt16BE(attributes, CRC_FROM);
  batch.writeInt32BE(count - 1, 23); // last offset delta
  batch.writeBigInt64BE(timestamp, 27); // base timestamp
  batch.writeBigInt64BE(timestamp, 35); // max timestamp
  batch.writeBigInt64BE(-1n, 43); // producer id: none (not idempotent)
  batch.writeInt16BE(-1, 51); // producer epoch
  batch.writeInt32BE(-1, 53); // base sequence
  batch.writeInt32BE(count, 57);
  // Through a one-buffer Writer: the client's crc32c copies a plain Buffer before its native CRC, not a DynamicBuffer's only buffer.
  batch.writeUInt32BE(crc32c(Writer.create().append(batch.subarray(CRC_FROM)).dynamicBuffer), CRC_AT);
  return batch;
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
): Promise<Buffer> {
  const keyBytes = new Int32Array(at.length);
  const size = recordsSize(messages, at, keyBytes);
  const alloc = (n: number) => (buffers ? buffers.pool.take(n, buffers.taken) : Buffer.allocUnsafe(n));
  if (compression === 'none') {
    const batch = alloc(HEADER + size);
    writeRecords(batch, HEADER, messages, at, keyBytes);
    return finishBatch(batch, at.length, 0, timestamp);
  }
  const records = alloc(size);
  writeRecords(records, 0, messages, at, keyBytes);
  const algorithm = compressionsAlgorithms[compression];
  const compressed = 'compress' in algorithm ? await algorithm.compress(records) : algorithm.compressSync(records);
  const batch = Buffer.allocUnsafe(HEADER + compressed.length);
  compressed.copy(batch, HEADER);
  return finishBatch(batch, at.length, algorithm.bitmask, timestamp);
}

type Partitions = { partition: number; batch: Buffer; count: number }[];
type ProduceResponse = { responses: { name: string; partitionResponses: { index: number; errorCode: number; baseOffset: bigint }[] }[] };

/** Produce v9+ (flexible versions): null transactional id, acks, timeout, [topic [partition records]]. */
function createRequest(acks: number, timeout: number, topics: [string, Partitions][]): Writer {
  return Writer.create()
    .appendString(null)
    .appendInt16(acks)
    .appendInt32(timeout)
    .appendArray(topics, (w, [topic, partitions]) => {
      w.appendString(topic).appendArray(partitions, (w, { partition, batch }) => {
        w.appendInt32(partition).appendUnsignedVarInt(batch.length + 1).append(batch);
      });
    })
    .appendTaggedFields();
}

const PARSERS: Record<number, typeof produceV9.parseResponse> = { 9: produceV9.parseResponse, 10: produceV10.parseResponse, 11: produceV11.parseResponse };

/** Sends pre-encoded record batches on a client's connections (see the module comment). */
export class BatchProducer {
  private readonly apis = new Map<number, API<[number, number, [string, Partitions][]], ProduceResponse>>();
  private readonly buffers = new BatchBuffers();

  constructor(
    private readonly producer: Producer<string | Uint8Array, Buffer, string, string>,
    private readonly opts: { acks: number; timeout: number; compression: Compression },
  ) {}

  /** Bytes of the record batches (compressed, as sent) of the last send. */
  lastBytes = 0;

  /**
   * Writes `messages` (partitions already chosen), each partition's in order as one record batch;
   * resolves once every leader acknowledged with `acks`. Any error rejects the whole send (clearing the
   * client's metadata: a leader may have moved); the caller retries it whole, as with the client's `send`.
   * A record batch over `maxBytes` after compression is not sent: KAFKA_BATCH_OVER.
   */

  async send(messages: RawMessage[], maxBytes = Number.POSITIVE_INFINITY): Promise<Written[]> {
    const byTopic = new Map<string, Map<number, number[]>>();
    let lastTopic = '';
    let parts: Map<number, number[]> | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.topic !== lastTopic || !parts) {
        lastTopic = m.topic;
        parts = byTopic.get(m.topic);
        if (!parts) byTopic.set(m.topic, (parts = new Map()));
      }
      const list = parts.get(m.partition);
      if (list) list.push(i);
      else parts.set(m.partition, [i]);
    }
    try {
      const metadata = await this.producer.metadata({ topics: [...byTopic.keys()] });
      const timestamp = BigInt(Date.now());
      /** Per leader: its topics and their partitions' batches. */
      const byLeader = new Map<number, Map<string, Partitions>>();
      const work: Promise<void>[] = [];
      const taken: Buffer[] = [];
      let bytes = 0;
      let largest = 0;
      for (const [topic, partitions] of byTopic) {
        const t = metadata.topics.get(topic);
        if (!t) throw new AppError('KAFKA_TOPIC_MISSING', `no metadata for topic ${topic}`);
        for (const [partition, at] of partitions) {
          const leader = t.partitions[partition]?.leader;
          if (leader === undefined || leader < 0) throw new AppError('KAFKA_NO_LEADER', `${topic} partition ${partition} has no leader now`);
          let topics = byLeader.get(leader);
          if (!topics) byLeader.set(leader, (topics = new Map()));
          let list = topics.get(topic);
          if (!list) topics.set(topic, (list = []));
          const entry: Partitions[number] = { partition, batch: Buffer.alloc(0), count: at.length };
          list.push(entry);
          work.push(recordBatch(messages, at, this.opts.compression, timestamp, { pool: this.buffers, taken }).then((b) => void (entry.batch = b, bytes += b.length, (largest = Math.max(largest, b.length)))));
          if (at.length >= YIELD_AFTER) await yieldToIO(); // I/O between big partitions' batches
        }
      }
      await Promise.all(work);
      this.lastBytes = bytes;
      if (largest > maxBytes) {
        this.buffers.release(taken); // not sent
        throw new AppError('KAFKA_BATCH_OVER', `a record batch of ${largest} bytes after compression, over ${maxBytes}`);
      }
      const answers = await Promise.all([...byLeader].map(([leader, topics]) => this.produce(metadata, leader, [...topics])));
      this.buffers.release(taken); // acknowledged (a failed send's buffers are dropped: a request may still be queued)
      const out: Written[] = [];
      for (const [i, [, topics]] of [...byLeader].entries()) {
        const counts = new Map<string, number>();
        for (const [topic, list] of topics) for (const p of list) counts.set(`${topic}/${p.partition}`, p.count);
        for (const r of answers[i]!.responses) {
          for (const p of r.partitionResponses) out.push({ topic: r.name, partition: p.index, offset: p.baseOffset, count: counts.get(`${r.name}/${p.index}`) ?? 0 });
        }
      }
      return out;
    } catch (e) {
      this.producer.clearMetadata();
      throw e;
    }
  }

  private async produce(metadata: ClusterMetadata, leader: number, topics: [string, Partitions][]): Promise<ProduceResponse> {
    const broker = metadata.brokers.get(leader);
    if (!broker) throw new AppError('KAFKA_NO_LEADER', `broker ${leader} is not in the cluster metadata`);
    const connection = await new Promise<Connection>((resolve, reject) =>
      this.producer[kGetConnection](broker, (e, c) => (e ? reject(e) : resolve(c!))),
    );
    const api = await this.api();
    return api.async(connection, this.opts.acks, this.opts.timeout, topics);
  }

  /** The Produce API at the version the client negotiated with the brokers (9-11: flexible requests). */
  private async api(): Promise<API<[number, number, [string, Partitions][]], ProduceResponse>> {
    const negotiated = await new Promise<{ version: number }>((resolve, reject) =>
      this.producer[kGetApi]('Produce', (e, a) => (e ? reject(e) : resolve(a as { version: number }))),
    );
    const version = negotiated.version;
    let api = this.apis.get(version);
    if (!api) {
      const parse = PARSERS[version];
      if (!parse) throw new AppError('KAFKA_PRODUCE_VERSION', `the brokers' Produce API version ${version} is not one this producer writes (9-11)`);
      api = createAPI(0, version, createRequest, parse as never);
      this.apis.set(version, api);
    }
    return api;
  }
}
