import { Admin, ProduceAcks, Producer, stringSerializer } from '@platformatic/kafka';
import type { ChangeBatch, TableSchema } from '../change/index.ts';
import { AppError, errorMessage } from '../errors.ts';
import { type Encoded, EventEncoder, schemaTopicName, topicName } from './kafka-encode.ts';
import { partitionOfBytes } from './kafka-partition.ts';
import type { BusWriter } from './kafka-producer-thread.ts';
import { BatchProducer, idempotenceRefused, type Written, yieldToIO } from './kafka-produce.ts';
import { brokerTooLarge, describeMessage, messageBytes, nextEnd } from './kafka-split.ts';
import type { KafkaBusOptions } from './kafka.ts';

/** What the producer side shows in /v1/status and /readyz. */
export interface ProducerStatus {
  published: number;
  messages: number;
  /** Last send error while retrying; null once a send succeeds. */
  error: string | null;
  retries: number;
}

/** One message as the client sends it. */
type Message = Encoded;
/** A batch's messages, and the encoder's slabs holding their values (reused once the batch is acknowledged). */
type Encoding = { messages: Message[]; slabs: Buffer[] };

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/** Changes encoded between two yields to I/O (~2-3 ms of this thread). */
const ENCODE_SLICE = 1_000;
/** `bus.max_batch_bytes`' default: below the brokers' default message.max.bytes (1,048,588). */
export const DEFAULT_MAX_BATCH_BYTES = 1_000_000;
/**
 * With compression, a send is planned for `bus.max_batch_bytes` of compressed bytes at the last send's
 * ratio plus this margin; each record batch's real (compressed) size is checked before it is sent, and a
 * batch over the limit is planned again by the uncompressed measure.
 */
const RATIO_MARGIN = 1.25;

/**
 * Writes batches to Kafka: one topic per table, key = primary key, explicit Java-compatible partition,
 * acks=all. A send that fails is retried until it succeeds or the bus stops, so `publish` does not
 * resolve and the source stops reading the replication socket: backpressure, not loss.
 */
export class KafkaWriter implements BusWriter {
  readonly status: ProducerStatus = { published: 0, messages: 0, error: null, retries: 0 };
  readonly thread = 'main';
  private readonly producer: Producer<string | Uint8Array, Buffer, string, string>;
  private readonly admin: Admin;
  private readonly encoder: EventEncoder;
  /** Record batches written here (idempotent or not) and sent on the client's connections; undefined once the brokers' Produce version is not one it writes (the client's `send` then). */
  private batches: BatchProducer | undefined;
  private readonly partitions = new Map<string, number>();
  /** Log end offset of every partition written, as of the last acknowledged send ("topic/partition"). */
  readonly ends = new Map<string, bigint>();
  /** Consistent point of the initial copy being published: the order key of its lsn-0 events. */
  private snapshotPoint = 0n;
  private readonly points = new WeakMap<ChangeBatch, bigint>();

  constructor(
    private readonly opts: KafkaBusOptions,
    private readonly log: (m: string) => void,
    /** Called after `status` or `ends` changed (the producer's Worker reports them to the main thread). */
    private readonly changed: () => void = () => {},
  ) {
    const base = { bootstrapBrokers: opts.brokers, retries: 1, retryDelay: 100, timeout: 5_000, connectTimeout: 2_000 };
    this.producer = new Producer({
      ...base,
      // The client turns an idempotent producer's `retries` of 0 or 1 into "retry forever" (every request,
      // metadata included): a topic not there yet or a broker down then hung the first publish without an
      // error. 2 is kept as given; write() retries a failed send itself (with backoff, in the status and
      // /readyz), and the client starts a new producer id after a failed idempotent send.
      retries: opts.idempotent ? 2 : base.retries,
      clientId: `ducktail-${opts.instance}-producer`,
      // Values are encoded by EventEncoder as bytes (the schema block is copied, not re-encoded per event).
      serializers: { key: keySerializer, value: (b: Buffer | undefined) => b, headerKey: stringSerializer, headerValue: stringSerializer },
      acks: ProduceAcks.ALL,
      idempotent: opts.idempotent,
      // InitProducerId asks for a new producer id with id -1 and epoch -1, as Kafka's Java client does. The
      // client's default (0 and 0) names an existing producer whose epoch is to be bumped (KIP-360): Apache
      // Kafka ignores it without a transactional id, librdkafka's mock looks producer 0 up and answers
      // UNKNOWN_PRODUCER_ID, so an idempotent producer never got an id there.
      ...(opts.idempotent ? { producerId: -1n, producerEpoch: -1 } : {}),
      compression: opts.compression,
      autocreateTopics: false,
    });
    // Idempotent: its own producer id (InitProducerId on the client's connection, -1 / -1 as above) and sequences;
    // the client's producer id is used only by its own sends (the schema topic, dead letters, the fallback).
    this.batches = new BatchProducer(this.producer, { acks: ProduceAcks.ALL, timeout: base.timeout, compression: opts.compression, idempotent: opts.idempotent, log });
    this.clientIdempotent = opts.idempotent;
    this.admin = new Admin({ ...base, clientId: `ducktail-${opts.instance}-admin` });
    this.encoder = new EventEncoder(opts.topicPrefix, opts.version, opts.eventSchema ?? 'embedded');
  }

  /** Layout ids this writer has published on the schema topic (acknowledged). */
  private readonly layoutsSent = new Set<string>();

  /** Payload-only events: each table's layout on the schema topic, acknowledged by every replica before any event naming it is sent. */
  private async publishLayouts(tables: Iterable<TableSchema>): Promise<void> {
    if (this.encoder.mode !== 'topic') return;
    const topic = schemaTopicName(this.opts.topicPrefix);
    for (const t of tables) {
      const l = this.encoder.layout(t);
      if (this.layoutsSent.has(l.id)) continue;
      await this.ensureTopic(topic, 1);
      await this.clientSend([{ topic, partition: 0, key: l.id, value: Buffer.from(l.value) }]);
      this.layoutsSent.add(l.id);
    }
  }

  /** Encodes a batch before its turn to be sent (while the batch before it is acknowledged). */
  encodeAhead(batch: ChangeBatch): Promise<Encoding> {
    return this.encode(batch);
  }

  /** Sends every change of the batch (first as `encoded`, when given); resolves when all brokers acknowledged all of them. */
  async write(batch: ChangeBatch, signal: AbortSignal, encoded?: Encoding): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    /** Messages of the batch acknowledged so far: its sends (bus.max_batch_bytes) are consecutive ranges, a retry resumes after them. */
    let acked = 0;
    let sending: Message[] = [];
    /** Sizes by the uncompressed measure (else by the last send's compression ratio, checked after compressing). */
    let exact = !this.batches || this.opts.compression === 'none';
    /** End of the send whose batches wait to be sent again (BatchProducer.pending). */
    let sentEnd = 0;
    this.batches?.abandon(); // none wait from an earlier write (each ends acknowledged, or abandons them); were one to, it is not this batch's
    for (;;) {
      if (signal.aborted) {
        this.batches?.abandon();
        throw new AppError('ABORTED', 'publish aborted: the bus is stopping');
      }
      if (this.held) throw this.held;
      try {
        const { messages, slabs } = encoded ?? (await this.encode(batch));
        encoded = undefined; // a retry encodes again (partition counts may have changed); a failed send's slabs are not reused
        if (this.batches?.pending) {
          // The failed send's batches not acknowledged yet, as they were built (same producer id, epoch and
          // sequences: a broker that wrote one before its answer was lost takes it as a duplicate); the
          // acknowledged ones are not sent again.
          this.noteWritten(await this.batches.resend());
          acked = sentEnd;
        }
        while (acked < messages.length) {
          const limit = exact ? this.maxBatchBytes : Math.floor(this.maxBatchBytes / Math.min(1, this.ratio * RATIO_MARGIN));
          const end = nextEnd(messages, limit, acked);
          sending = acked === 0 && end === messages.length ? messages : messages.slice(acked, end);
          sentEnd = end;
          await this.send(sending, exact ? undefined : this.maxBatchBytes);
          if (!exact && this.batches) {
            let raw = 0;
            for (const m of sending) raw += messageBytes(m);
            this.ratio = Math.max(this.batches.lastBytes / raw, 0.01);
          }
          acked = end;
        }
        this.encoder.release(slabs); // acknowledged: the client holds none of these values any more
        this.status.published++;
        this.status.messages += messages.length;
        this.status.error = null;
        this.changed();
        return;
      } catch (e) {
        if (signal.aborted) {
          this.batches?.abandon();
          throw new AppError('ABORTED', 'publish aborted: the bus is stopping', { cause: e });
        }
        if (brokerTooLarge(e)) this.batches?.abandon(); // refused: planned again (smaller) or held, not sent as it was
        if (!exact && (brokerTooLarge(e) || (e instanceof AppError && (e.code === 'KAFKA_BATCH_OVER' || e.code === 'KAFKA_MESSAGE_TOO_LARGE')))) {
          exact = true; // the ratio misjudged this batch: plan the rest of it by the uncompressed measure
          this.ratio = 1;
          continue;
        }
        const held = this.tooLarge(e, sending);
        if (held) {
          // No send can carry it: retrying would only repeat the refusal. Publishing stops here: this and every
          // later publish fail with it (the source says so and backs off; nothing past it is acknowledged, so
          // the slot's confirmed position stays before it) until the settings are raised and ducktail restarts.
          this.held = held;
          this.status.error = `${held.code}: ${held.message}`;
          this.log(`kafka: ${this.status.error}`);
          this.changed();
          throw held;
        }
        if (this.status.error === null) this.log(`kafka: send failed, retrying until the brokers answer: ${describe(e)}`);
        this.status.error = describe(e);
        this.status.retries++;
        this.changed();
        this.partitions.clear(); // metadata may be stale (leader moved, topic recreated)
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** Compressed / uncompressed bytes of the last send written here (BatchProducer, compression on). */
  private ratio = 1;

  /** A message no send can carry (KAFKA_MESSAGE_TOO_LARGE): publishing has stopped at it. */
  private held: AppError | undefined;

  private get maxBatchBytes(): number {
    return this.opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  }

  /** KAFKA_MESSAGE_TOO_LARGE for a message over the limit, or a broker's MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE answer (naming the send's largest message). */
  private tooLarge(e: unknown, sending: Message[]): AppError | undefined {
    if (e instanceof AppError && e.code === 'KAFKA_MESSAGE_TOO_LARGE') return e;
    const refused = brokerTooLarge(e);
    if (!refused || sending.length === 0) return undefined;
    let largest = sending[0]!;
    for (const m of sending) if (m.value.length > largest.value.length) largest = m;
    return new AppError(
      'KAFKA_MESSAGE_TOO_LARGE',
      `the brokers answered ${refused} to a send of at most bus.max_batch_bytes = ${this.maxBatchBytes} per partition ` +
        `(its largest message: ${describeMessage(largest)}, ${messageBytes(largest)} bytes), so their message.max.bytes (or the topic's ` +
        `max.message.bytes) is lower: lower bus.max_batch_bytes below it, or raise it, then restart ducktail; publishing stops here ` +
        `(nothing past it is confirmed to PostgreSQL)`,
      { cause: e },
    );
  }

  /** Sends and notes each partition's new end. */
  private async send(messages: Message[], maxBytes?: number): Promise<void> {
    if (this.batches) {
      try {
        this.noteWritten(await this.batches.send(messages, maxBytes));
        return;
      } catch (e) {
        if (!(e instanceof AppError && e.code === 'KAFKA_PRODUCE_VERSION')) throw e;
        this.log(`kafka: ${e.message}; sending through the client's producer instead`);
        this.batches = undefined;
      }
    }
    // The client's send: a message without a key must not carry the property at all.
    const plain = messages.map((m) => (m.key === undefined ? { topic: m.topic, partition: m.partition, value: m.value } : m));
    this.noteEnds(plain, (await this.clientSend(plain)).offsets ?? []);
  }

  /** The client's own sends are idempotent until the brokers refuse it (as BatchProducer's are). */
  private clientIdempotent: boolean;

  /** Through the client's `send` (the schema topic, dead letters, the fallback): idempotent where the brokers allow it. */
  private async clientSend(messages: Parameters<KafkaWriter['producer']['send']>[0]['messages']) {
    try {
      return await this.producer.send({ messages, ...(this.clientIdempotent ? {} : { idempotent: false }) });
    } catch (e) {
      const why = this.clientIdempotent ? idempotenceRefused(e) : undefined;
      if (!why) throw e;
      this.clientIdempotent = false;
      this.log(`kafka: the brokers refuse an idempotent producer (${why}); the client's sends (schema topic, dead letters) go on without idempotence`);
      return this.producer.send({ messages, idempotent: false });
    }
  }

  private noteWritten(written: Written[]): void {
    for (const w of written) {
      if (w.offset < 0n) continue; // a duplicate's answer: written by an earlier attempt, offset not told
      const key = `${w.topic}/${w.partition}`;
      const end = w.offset + BigInt(w.count);
      if (end > (this.ends.get(key) ?? 0n)) this.ends.set(key, end);
    }
  }

  private noteEnds(messages: { topic: string; partition: number }[], offsets: { topic: string; partition: number; offset: bigint }[]): void {
    const counts = new Map<string, number>();
    for (const m of messages) counts.set(`${m.topic}/${m.partition}`, (counts.get(`${m.topic}/${m.partition}`) ?? 0) + 1);
    for (const o of offsets) {
      const key = `${o.topic}/${o.partition}`;
      const end = o.offset + BigInt(counts.get(key) ?? 0);
      if (end > (this.ends.get(key) ?? 0n)) this.ends.set(key, end);
    }
  }

  /** Sends one raw message (the dead-letter topic), acks=all, retrying like `write`. */
  async sendRaw(topic: string, key: string | undefined, value: Buffer, headers: Map<string, string>, signal: AbortSignal): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    for (;;) {
      if (signal.aborted) throw new AppError('ABORTED', 'dead-letter send aborted: the bus is stopping');
      try {
        await this.ensureTopic(topic);
        await this.clientSend([{ topic, key, value, headers, partition: 0 }]);
        return;
      } catch (e) {
        this.status.error = `dead-letter topic ${topic}: ${describe(e)}`;
        this.changed();
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** Encodes run one after another (an encode yields to I/O between slices, and the encoder's slabs are one batch's at a time). */
  private encoding: Promise<unknown> = Promise.resolve();

  private encode(batch: ChangeBatch): Promise<Encoding> {
    const run = this.encoding.then(() => this.encodeNow(batch));
    this.encoding = run.catch(() => {});
    return run;
  }

  private async encodeNow(batch: ChangeBatch): Promise<Encoding> {
    const out: Message[] = [];
    // The copy a batch belongs to is fixed when it is first encoded (a retry may encode it after later batches).
    let point = this.points.get(batch);
    if (point === undefined) {
      if (batch.snapshot?.status === 'copying') this.snapshotPoint = batch.snapshot.consistentPoint;
      if (batch.copyPoint !== undefined) this.snapshotPoint = batch.copyPoint;
      point = this.snapshotPoint;
      this.points.set(batch, point);
    }
    const counts = new Map<string, number>();
    for (const t of batch.tables.values()) counts.set(`${t.schema}.${t.table}`, await this.ensureTopic(topicName(this.opts.topicPrefix, t)));
    await this.publishLayouts(batch.tables.values());
    this.encoder.startBatch(); // encodes are chained (`encode`): the slabs are this batch's alone until endBatch
    let lastTable = '';
    let slice = 0;
    let table: TableSchema | undefined;
    let n = 0;
    let partition = (key: Uint8Array) => partitionOfBytes(key, n);
    for (const c of batch.changes) {
      if (c.table !== lastTable || !table) {
        table = batch.tables.get(c.table);
        if (!table) throw new AppError('BATCH_MISSING_TABLE', `batch has changes of ${c.table} but not its schema`);
        lastTable = c.table;
        const count = counts.get(c.table)!;
        partition = (key: Uint8Array) => partitionOfBytes(key, count);
        n = count;
      }
      this.encoder.encodeInto(out, c, table, n, partition, point);
      // Let I/O callbacks in every few ms: the consumer's apply (the pipeline's serial step) resumes
      // between its DuckDB calls on this thread and must not wait behind a whole 10k-change encode.
      if (++slice === ENCODE_SLICE) {
        slice = 0;
        await yieldToIO();
      }
    }
    const slabs = this.encoder.endBatch();
    return { messages: out, slabs };
  }

  /**
   * Partition count of `topic`, creating it (configured partitions and replication) when missing;
   * `partitions` given = the schema topic (that many partitions, compacted).
   */
  private async ensureTopic(topic: string, partitions?: number): Promise<number> {
    const known = this.partitions.get(topic);
    if (known !== undefined) return known;
    let count = await this.partitionCount(topic);
    if (count === undefined) {
      try {
        const configs = partitions === undefined ? [] : [{ name: 'cleanup.policy', value: 'compact' }];
        await this.admin.createTopics({ topics: [topic], partitions: partitions ?? this.opts.partitions, replicas: this.opts.replicationFactor, configs });
        this.log(`kafka: created topic ${topic} (${partitions ?? this.opts.partitions} partitions)`);
      } catch (e) {
        // Some brokers (and librdkafka's mock) refuse CreateTopics: fall back to their auto-creation.
        this.log(`kafka: CreateTopics for ${topic} refused (${describe(e)}); asking the broker to auto-create it`);
        await this.producer.metadata({ topics: [topic], autocreateTopics: true, forceUpdate: true }).catch(() => undefined);
      }
      count = await this.partitionCount(topic);
      if (count === undefined) {
        throw new AppError(
          'KAFKA_TOPIC_MISSING',
          `topic ${topic} does not exist and the brokers neither created it nor auto-create topics: ` +
            `create it with ${this.opts.partitions} partitions (kafka-topics.sh --create --topic ${topic} --partitions ${this.opts.partitions})`,
        );
      }
    }
    this.partitions.set(topic, count);
    return count;
  }

  private async partitionCount(topic: string): Promise<number | undefined> {
    try {
      const md = await this.producer.metadata({ topics: [topic], forceUpdate: true });
      return md.topics.get(topic)?.partitionsCount || undefined;
    } catch (e) {
      if (/unknown topic|UNKNOWN_TOPIC/i.test(describe(e))) return undefined;
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.producer.close(true).catch(() => {});
    await this.admin.close().catch(() => {});
  }
}

/** Keys are the encoder's bytes (events) or text (layouts on the schema topic, dead letters). */
function keySerializer(key?: string | Uint8Array): Buffer | undefined {
  if (key === undefined) return undefined;
  return typeof key === 'string' ? Buffer.from(key) : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

/** The client's errors wrap the broker's in `errors`/`cause`: show the innermost words. */
export function describe(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; cur && i < 4; i++) {
    parts.push(errorMessage(cur));
    const next = (cur as { errors?: unknown[]; cause?: unknown }).errors?.[0] ?? (cur as { cause?: unknown }).cause;
    cur = next;
  }
  return [...new Set(parts)].join(': ');
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
