import {
  type API,
  type Broker,
  type ClusterMetadata,
  type Connection,
  compressionsAlgorithms,
  crc32c,
  createAPI,
  kGetApi,
  kGetBootstrapConnection,
  kGetConnection,
  type Producer,
  produceV9,
  produceV10,
  produceV11,
  ProtocolError,
  ResponseError,
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
 * Idempotent (`bus.idempotent`, the default) as Kafka's Java client and librdkafka are: a producer id and
 * epoch of our own (InitProducerId on the client's connection), and per topic-partition base sequences
 * (int32, wrapping). A batch is built and stamped once; after a retriable failure the batches not yet
 * acknowledged are sent again as they are (same producer id, epoch and sequence: a broker that appended
 * one already answers it as a duplicate instead of writing it twice), and acknowledged ones never are.
 * OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH (the broker lost or fenced our
 * state) or a send given up on: a new producer id, sequences from 0, the unacknowledged batches stamped
 * again and resent (the one case that can write a batch twice: the consumer skips an event at or before
 * its partition's stored order key). Without idempotence a batch carries producer id, epoch and base
 * sequence -1, as Java's non-idempotent producer writes them. Record format:
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

/** An idempotent producer's identity in a batch's header: producer id, epoch, and the batch's first sequence. */
export interface Stamp {
  producerId: bigint;
  epoch: number;
  baseSequence: number;
}

/** Producer id, epoch and base sequence -1: not idempotent. */
const NO_STAMP: Stamp = { producerId: -1n, epoch: -1, baseSequence: -1 };

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

type Partitions = { partition: number; batch: Buffer; count: number }[];
/** A Produce response as the client parses it (v9-v11): per partition its error code and first offset. */
export type ProduceResponse = { responses: { name: string; partitionResponses: { index: number; errorCode: number; baseOffset: bigint; errorMessage?: string | null }[] }[] };

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

/** Where batches go: cluster metadata, one Produce request to a leader, InitProducerId. The client's connections (`clientLink`), or a test's broker. */
export interface ProduceLink {
  /** Fails with KAFKA_PRODUCE_VERSION when the brokers' Produce version is not one written here. */
  prepare(): Promise<void>;
  /** Leader of every partition of `topics` (-1 or missing: none now). */
  leaders(topics: string[]): Promise<Map<string, number[]>>;
  /** One Produce request to `leader`; partition errors come back in the response (not thrown). */
  produce(leader: number, acks: number, timeout: number, topics: [string, Partitions][]): Promise<ProduceResponse>;
  /** A new producer id and epoch (InitProducerId, producer id -1 and epoch -1, no transactional id). */
  initProducerId(timeout: number): Promise<{ producerId: bigint; producerEpoch: number }>;
  /** After a failure: the next `leaders` asks the brokers again. */
  clearMetadata(): void;
}

/** The client's connections, API version negotiation and metadata. */
export function clientLink(producer: Producer<string | Uint8Array, Buffer, string, string>): ProduceLink {
  const apis = new Map<number, API<[number, number, [string, Partitions][]], ProduceResponse>>();
  let metadata: ClusterMetadata | undefined;
  const connection = (broker: Broker) =>
    new Promise<Connection>((resolve, reject) => producer[kGetConnection](broker, (e, c) => (e ? reject(e) : resolve(c!))));
  const negotiated = (name: string) =>
    new Promise<{ version: number; async: (...args: unknown[]) => Promise<unknown> }>((resolve, reject) =>
      producer[kGetApi](name, (e, a) => (e ? reject(e) : resolve(a as never))),
    );
  /** The Produce API at the version the client negotiated with the brokers (9-11: flexible requests). */
  const api = async () => {
    const version = (await negotiated('Produce')).version;
    let a = apis.get(version);
    if (!a) {
      const parse = PARSERS[version];
      if (!parse) throw new AppError('KAFKA_PRODUCE_VERSION', `the brokers' Produce API version ${version} is not one this producer writes (9-11)`);
      // Partition errors are read here, per partition (the client's parser throws them with the whole response).
      const tolerant = ((...args: Parameters<typeof parse>) => {
        try {
          return parse(...args);
        } catch (e) {
          if (e instanceof ResponseError && (e as unknown as { response?: ProduceResponse }).response?.responses) return (e as unknown as { response: ProduceResponse }).response;
          throw e;
        }
      }) as typeof parse;
      a = createAPI(0, version, createRequest, tolerant as never);
      apis.set(version, a);
    }
    return a;
  };
  return {
    async prepare() {
      await api();
    },
    async leaders(topics) {
      metadata = await producer.metadata({ topics });
      const out = new Map<string, number[]>();
      for (const topic of topics) {
        const t = metadata.topics.get(topic);
        if (!t) throw new AppError('KAFKA_TOPIC_MISSING', `no metadata for topic ${topic}`);
        out.set(topic, t.partitions.map((p) => p.leader));
      }
      return out;
    },
    async produce(leader, acks, timeout, topics) {
      const broker = metadata?.brokers.get(leader);
      if (!broker) throw new AppError('KAFKA_NO_LEADER', `broker ${leader} is not in the cluster metadata`);
      const c = await connection(broker);
      return (await api()).async(c, acks, timeout, topics);
    },
    async initProducerId(timeout) {
      const init = await negotiated('InitProducerId');
      const c = await new Promise<Connection>((resolve, reject) => producer[kGetBootstrapConnection]((e, c) => (e ? reject(e) : resolve(c!))));
      // -1 / -1 asks for a new producer id, as Kafka's Java client does (0 / 0 names producer 0 to bump: librdkafka's mock answers UNKNOWN_PRODUCER_ID).
      return (await init.async(c, null, timeout, -1n, -1)) as { producerId: bigint; producerEpoch: number };
    },
    clearMetadata() {
      metadata = undefined;
      producer.clearMetadata();
    },
  };
}

/** Broker error codes the producer treats apart (https://kafka.apache.org/protocol#protocol_error_codes). */
const MESSAGE_TOO_LARGE = 10;
const RECORD_LIST_TOO_LARGE = 18;
const OUT_OF_ORDER_SEQUENCE_NUMBER = 45;
const DUPLICATE_SEQUENCE_NUMBER = 46;
const INVALID_PRODUCER_EPOCH = 47;
const UNKNOWN_PRODUCER_ID = 59;
const PRODUCER_FENCED = 90;
/** The broker has no (or other) state of our producer id: a new one, sequences from 0. */
const LOST_PRODUCER = new Set([OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, PRODUCER_FENCED]);

/** One partition's record batch of a send, until every replica acknowledged it. */
interface Outgoing {
  topic: string;
  partition: number;
  batch: Buffer;
  count: number;
  /** Its stamp (base sequence: where the partition's sequence goes back to if the broker refused the batch). */
  stamp: Stamp;
  acked: boolean;
  /** The broker refused it (too large): not written, and sending it again would not change that. */
  refused: boolean;
}

/** The producer's state as the brokers see it, for tests and the status. */
export interface ProducerIdentity {
  producerId: bigint;
  epoch: number;
  /** Next base sequence per "topic/partition". */
  sequences: Map<string, number>;
}

/** Sends pre-encoded record batches on a client's connections (see the module comment). */
export class BatchProducer {
  private readonly buffers = new BatchBuffers();
  private readonly link: ProduceLink;
  /** Idempotent: our producer id and epoch (none before the first send, or after the brokers lost it: a new one before the next). */
  private id: { producerId: bigint; epoch: number } | undefined;
  /** Idempotent: the next base sequence of each topic-partition written with `id`. */
  private readonly sequences = new Map<string, number>();
  /** A send not acknowledged whole: its batches, until `resend` got them all acknowledged or `abandon`. */
  private open: { batches: Outgoing[]; taken: Buffer[]; written: Written[]; failed: boolean } | undefined;

  constructor(
    link: ProduceLink | Producer<string | Uint8Array, Buffer, string, string>,
    private readonly opts: { acks: number; timeout: number; compression: Compression; idempotent?: boolean; log?: (m: string) => void },
  ) {
    this.link = 'leaders' in link ? link : clientLink(link);
  }

  /** Bytes of the record batches (compressed, as sent) of the last send. */
  lastBytes = 0;

  /** Producer id, epoch and next sequences (idempotent; undefined before the first send or after a loss). */
  get identity(): ProducerIdentity | undefined {
    return this.id && { ...this.id, sequences: new Map(this.sequences) };
  }

  /** True while a failed send's batches wait for `resend` (or `abandon`). */
  get pending(): boolean {
    return this.open !== undefined;
  }

  /**
   * Writes `messages` (partitions already chosen), each partition's in order as one record batch;
   * resolves once every leader acknowledged with `acks`. A failure rejects (clearing the metadata: a
   * leader may have moved) and keeps the batches not acknowledged: the caller sends them again with
   * `resend` (as they are: same producer id, epoch and sequences) or gives them up with `abandon`;
   * `send` refuses while they wait. A record batch over `maxBytes` after compression is not sent:
   * KAFKA_BATCH_OVER (nothing waits then).
   */
  async send(messages: RawMessage[], maxBytes = Number.POSITIVE_INFINITY): Promise<Written[]> {
    if (this.open) throw new AppError('KAFKA_SEND_PENDING', 'a failed send waits to be sent again (resend) or given up (abandon)');
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
      await this.link.prepare();
      if (this.idempotent && !this.id) await this.newProducer();
      const timestamp = BigInt(Date.now());
      const batches: Outgoing[] = [];
      const work: Promise<void>[] = [];
      const taken: Buffer[] = [];
      let bytes = 0;
      let largest = 0;
      for (const [topic, partitions] of byTopic) {
        for (const [partition, at] of partitions) {
          const stamp = this.id ? { ...this.id, baseSequence: this.sequences.get(`${topic}/${partition}`) ?? 0 } : NO_STAMP;
          const entry: Outgoing = { topic, partition, batch: Buffer.alloc(0), count: at.length, stamp, acked: false, refused: false };
          batches.push(entry);
          work.push(
            recordBatch(messages, at, this.opts.compression, timestamp, { pool: this.buffers, taken }, stamp).then((b) => {
              entry.batch = b;
              bytes += b.length;
              largest = Math.max(largest, b.length);
            }),
          );
          if (at.length >= YIELD_AFTER) await yieldToIO(); // I/O between big partitions' batches
        }
      }
      await Promise.all(work);
      this.lastBytes = bytes;
      if (largest > maxBytes) {
        this.buffers.release(taken); // not sent, no sequence taken
        throw new AppError('KAFKA_BATCH_OVER', `a record batch of ${largest} bytes after compression, over ${maxBytes}`);
      }
      if (this.id) for (const b of batches) this.sequences.set(`${b.topic}/${b.partition}`, nextSequence(b.stamp.baseSequence, b.count));
      this.open = { batches, taken, written: [], failed: false };
    } catch (e) {
      this.link.clearMetadata();
      throw e;
    }
    return this.flush();
  }

  /**
   * The failed send's batches not acknowledged yet, again: as they were, or, when the brokers lost our
   * producer state (or a send was given up on), with a new producer id and sequences from 0.
   */
  async resend(): Promise<Written[]> {
    const open = this.open;
    if (!open) return [];
    if (this.idempotent && !this.id) {
      try {
        await this.newProducer();
      } catch (e) {
        this.link.clearMetadata();
        throw e;
      }
      const id = this.id as { producerId: bigint; epoch: number } | undefined; // undefined: the brokers refused idempotence
      for (const b of open.batches) {
        if (b.acked) continue;
        const key = `${b.topic}/${b.partition}`;
        b.stamp = id ? { ...id, baseSequence: this.sequences.get(key) ?? 0 } : NO_STAMP;
        if (id) this.sequences.set(key, nextSequence(b.stamp.baseSequence, b.count));
        // A copy: the buffer may still be referenced by a request of the failed send.
        b.batch = stampBatch(Buffer.from(b.batch), b.stamp);
      }
    }
    return this.flush();
  }

  /**
   * Gives up the failed send's batches (they will not be sent again as they are): one the broker may have
   * written makes the sequences unknown, so the next send starts a new producer id (Java's client bumps
   * the epoch then); a partition whose batch was refused (too large) goes back to that batch's sequence.
   */
  abandon(): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    for (const b of open.batches) {
      if (b.acked) continue;
      if (!b.refused) {
        this.lostProducer();
        return;
      }
      if (this.id && b.stamp.producerId === this.id.producerId && b.stamp.epoch === this.id.epoch) this.sequences.set(`${b.topic}/${b.partition}`, b.stamp.baseSequence);
    }
  }

  /** Why the brokers refused an idempotent producer (then every batch says producer id -1), or undefined. */
  refused: string | undefined;

  /** Idempotent: configured, and the brokers did not refuse it. */
  get idempotent(): boolean {
    return this.opts.idempotent === true && this.refused === undefined;
  }

  private async newProducer(): Promise<void> {
    this.sequences.clear();
    this.id = undefined;
    let r: { producerId: bigint; producerEpoch: number };
    try {
      r = await this.link.initProducerId(this.opts.timeout);
    } catch (e) {
      const why = idempotenceRefused(e);
      if (!why) throw e;
      // Idempotent where the brokers allow it: not authorized (IdempotentWrite) or no InitProducerId.
      this.refused = why;
      this.opts.log?.(
        `kafka: the brokers refuse an idempotent producer (${why}); producing without idempotence (producer id -1: a batch resent after a lost answer may be written twice, the consumer skips the copy) until ducktail restarts`,
      );
      return;
    }
    this.id = { producerId: r.producerId, epoch: r.producerEpoch };
  }

  private lostProducer(): void {
    if (!this.idempotent) return;
    this.id = undefined;
    this.sequences.clear();
  }

  /** One attempt at the open send's unacknowledged batches, one Produce request per leader. */
  private async flush(): Promise<Written[]> {
    const open = this.open!;
    const failures: { what: string; error: unknown }[] = [];
    try {
      const waiting = open.batches.filter((b) => !b.acked);
      const leaders = await this.link.leaders([...new Set(waiting.map((b) => b.topic))]);
      /** Per leader: its topics and their partitions' batches. */
      const byLeader = new Map<number, Map<string, Outgoing[]>>();
      for (const b of waiting) {
        const leader = leaders.get(b.topic)?.[b.partition];
        if (leader === undefined || leader < 0) {
          failures.push({ what: `${b.topic}/${b.partition}`, error: new AppError('KAFKA_NO_LEADER', `${b.topic} partition ${b.partition} has no leader now`) });
          continue;
        }
        let topics = byLeader.get(leader);
        if (!topics) byLeader.set(leader, (topics = new Map()));
        let list = topics.get(b.topic);
        if (!list) topics.set(b.topic, (list = []));
        list.push(b);
      }
      const answers = await Promise.allSettled(
        [...byLeader].map(([leader, topics]) =>
          this.link.produce(leader, this.opts.acks, this.opts.timeout, [...topics].map(([topic, list]) => [topic, list.map((b) => ({ partition: b.partition, batch: b.batch, count: b.count }))])),
        ),
      );
      for (const [i, [leader, topics]] of [...byLeader].entries()) {
        const answer = answers[i]!;
        if (answer.status === 'rejected') {
          failures.push({ what: `broker ${leader}`, error: answer.reason });
          continue;
        }
        const codes = new Map<string, { errorCode: number; baseOffset: bigint; errorMessage?: string | null }>();
        for (const r of answer.value.responses) for (const p of r.partitionResponses) codes.set(`${r.name}/${p.index}`, p);
        for (const [topic, list] of topics) {
          for (const b of list) {
            const key = `${topic}/${b.partition}`;
            const p = codes.get(key);
            if (!p) {
              failures.push({ what: key, error: new AppError('KAFKA_PRODUCE_ANSWER', `broker ${leader} did not answer for ${key}`) });
              continue;
            }
            if (p.errorCode === 0 || (p.errorCode === DUPLICATE_SEQUENCE_NUMBER && b.stamp.producerId >= 0n)) {
              // DUPLICATE_SEQUENCE_NUMBER: written before (a resend of a batch whose answer was lost), offset not told.
              b.acked = true;
              open.written.push({ topic, partition: b.partition, offset: p.errorCode === 0 ? p.baseOffset : -1n, count: b.count });
              continue;
            }
            if (p.errorCode === MESSAGE_TOO_LARGE || p.errorCode === RECORD_LIST_TOO_LARGE) b.refused = true;
            if (LOST_PRODUCER.has(p.errorCode) && this.idempotent && this.id && b.stamp.producerId === this.id.producerId) this.lostProducer();
            failures.push({ what: key, error: new ProtocolError(p.errorCode, p.errorMessage ?? null) });
          }
        }
      }
    } catch (e) {
      failures.push({ what: 'metadata', error: e });
    }
    if (failures.length === 0) {
      if (!open.failed) this.buffers.release(open.taken); // acknowledged (a failed send's buffers are dropped: a request may still be queued)
      this.open = undefined;
      return open.written;
    }
    open.failed = true;
    this.link.clearMetadata();
    // The cause: a refusal first (KafkaWriter reads MESSAGE_TOO_LARGE from it), else the first failure.
    const first = failures.find((f) => f.error instanceof ProtocolError && ((f.error as { apiCode?: number }).apiCode === MESSAGE_TOO_LARGE || (f.error as { apiCode?: number }).apiCode === RECORD_LIST_TOO_LARGE)) ?? failures[0]!;
    const waiting = open.batches.filter((b) => !b.acked).length;
    throw new AppError('KAFKA_SEND_FAILED', `${waiting} of ${open.batches.length} partition batches not acknowledged (${first.what}: ${errorText(first.error)}${failures.length > 1 ? `; ${failures.length - 1} more` : ''})`, { cause: first.error });
  }
}

/** The brokers' refusal of an idempotent producer in an InitProducerId failure: its error name, or undefined (another failure: retried). */
export function idempotenceRefused(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  const walk = (x: unknown): string | undefined => {
    if (!x || typeof x !== 'object' || seen.has(x)) return undefined;
    seen.add(x);
    const o = x as { apiId?: unknown; code?: unknown; errors?: unknown[]; cause?: unknown };
    if (o.apiId === 'CLUSTER_AUTHORIZATION_FAILED' || o.apiId === 'UNSUPPORTED_VERSION') return o.apiId;
    if (o.code === 'PLT_KFK_UNSUPPORTED_API') return 'no InitProducerId API';
    for (const c of o.errors ?? []) {
      const r = walk(c);
      if (r) return r;
    }
    return walk(o.cause);
  };
  return walk(e);
}

function errorText(e: unknown): string {
  const o = e as { apiId?: string; message?: string };
  return o?.apiId ?? o?.message ?? String(e);
}
