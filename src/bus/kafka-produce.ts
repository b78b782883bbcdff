import { type Producer, ProtocolError } from '@platformatic/kafka';
import { AppError } from '../errors.ts';
import { clientLink, type ProduceLink } from './kafka-produce-link.ts';
import { BatchBuffers, type Compression, NO_STAMP, nextSequence, type RawMessage, recordBatch, type Stamp, stampBatch } from './kafka-record-batch.ts';

/**
 * The producer's hot path without the client's per-record work: each partition's messages are written
 * straight into one Kafka v2 record batch (kafka-record-batch.ts: one buffer: header, records, CRC32C;
 * compressed as the client would), and one Produce request per leader carries them over the client's own
 * connections, API version negotiation and metadata (kafka-produce-link.ts). The client's `send` builds an
 * object, two header maps, a DynamicBuffer per record and concatenates them twice (for the CRC and for the
 * socket): about 4 µs of the JS thread per message here (docs/PERFORMANCE.md, sixth pass); this is a few
 * tenths of that.
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
 * sequence -1, as Java's non-idempotent producer writes them.
 */

/** A partition's acknowledged write: the offset of its first message and how many were written. */
export interface Written {
  topic: string;
  partition: number;
  offset: bigint;
  count: number;
}

/** A partition batch of at least this many messages is followed by a yield to I/O (see KafkaWriter's encode). */
const YIELD_AFTER = 1_000;

/** Resolves after pending I/O callbacks ran (a macrotask, unlike `await null`). */
export function yieldToIO(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
