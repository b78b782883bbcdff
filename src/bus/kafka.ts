import type { BatchSink, ChangeBatch, PartitionOffset } from '../change/index.ts';
import { AppError } from '../errors.ts';
import type { Bus, BusReadiness } from './bus.ts';
import { KafkaReader } from './kafka-consumer.ts';
import type { EventSchemaMode } from './kafka-encode.ts';
import { KafkaWriter } from './kafka-producer.ts';
import { type BusWriter, ProducerThread } from './kafka-producer-thread.ts';

/** Kafka bus settings (from the [bus] and [warehouse] config sections). */
export interface KafkaBusOptions {
  brokers: string[];
  topicPrefix: string;
  /** Partitions (and replication factor; -1 = the broker's default) of topics ducktail creates. */
  partitions: number;
  replicationFactor: number;
  /** This instance owns partitions p with p % instances == instance. */
  instance: number;
  instances: number;
  idempotent: boolean;
  compression: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  /**
   * "embedded" (default): every event carries its schema block (JsonConverter schemas.enable=true);
   * "topic": events are the payload alone (schemas.enable=false) and name their layout in
   * `source.layout`, published once on `<topicPrefix>-schemas` (docs/KAFKA.md).
   */
  eventSchema?: EventSchemaMode;
  /**
   * Most bytes (keys + values + per-record overhead, uncompressed) of one partition's record batch: a
   * batch's messages go out in as many consecutive sends as that takes (default DEFAULT_MAX_BATCH_BYTES).
   */
  maxBatchBytes?: number;
  /** How long a publish waits for more batches to send with it. */
  lingerMs: number;
  /**
   * Most messages this instance's own partitions may lag behind before `publish` waits (0 = no limit):
   * the producer never outruns the local consumer by more, so a broker's retention cannot drop unread data.
   */
  maxLag: number;
  /**
   * Most messages one of this instance's partitions may lag behind before `publish` waits (0 = no limit;
   * unset = DEFAULT_MAX_PARTITION_LAG). Retention is per partition: with `maxLag` a total, one partition
   * served late could fall past what the brokers keep while the others had no lag at all.
   */
  maxPartitionLag?: number;
  /** Most changes per warehouse transaction on the consuming side. */
  batchRows: number;
  /**
   * Fetch and decode in a Worker thread (default false). On the 2-core benchmark box, shared with
   * PostgreSQL, the mock brokers and DuckDB, the Worker measured slower than the main thread
   * (docs/PERFORMANCE.md), so it is opt-in.
   */
  fetchWorker?: boolean;
  /**
   * Encode and send in a Worker thread (default true): the producer's JSON events and record batches
   * no longer take turns with the source, the consumer and the warehouse's apply on the main thread
   * (docs/PERFORMANCE.md, "Kafka: the producer in a Worker"). false = on the main thread.
   */
  producerWorker?: boolean;
  deadLetterTopic: string;
  /** Written as `source.version` in every event. */
  version: string;
}

/** What the Kafka bus needs from the rest of the appliance. */
export interface KafkaBusDeps {
  /** Stored partition positions (the warehouse's `_ducktail.kafka_offsets`). */
  loadOffsets(): Promise<PartitionOffset[]>;
  log(message: string): void;
}

interface Queued {
  batch: ChangeBatch;
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * The Kafka bus: `publish` resolves when every broker replica acknowledged every message of the batch
 * (and of the batches before it: publishes are sent one after another, so per-partition order is the
 * source's order); `run` consumes the owned partitions into the sink. A snapshot marker is recorded in
 * the local warehouse once its batch is on Kafka, so the source knows the copy is done.
 */
export function createKafkaBus(opts: KafkaBusOptions, deps: KafkaBusDeps): Bus {
  const writer: BusWriter = opts.producerWorker === false ? new KafkaWriter(opts, deps.log) : new ProducerThread(opts, deps.log);
  let recopy: ((table: string) => void) | undefined;
  const reader = new KafkaReader(opts, {
    loadOffsets: deps.loadOffsets,
    recopy: () => recopy,
    deadLetter: (topic, key, value, headers, signal) => writer.sendRaw(topic, key, value, headers, signal),
    log: deps.log,
  });
  const stop = new AbortController();
  let sink: BatchSink | undefined;
  let attached: () => void = () => {};
  const ready = new Promise<void>((resolve) => (attached = resolve));
  const queue: Queued[] = [];
  let pumping = false;
  let closed = false;
  let running = false;
  const watched = new WeakSet<AbortSignal>();
  const maxPartitionLag = BigInt(opts.maxPartitionLag ?? DEFAULT_MAX_PARTITION_LAG);
  /** Publishing waits while the local consumer lags more than `maxLag` in all or `maxPartitionLag` in one partition. */
  const tooFarBehind = (lag: { total: bigint; most: bigint }) =>
    (opts.maxLag > 0 && lag.total > BigInt(opts.maxLag)) || (maxPartitionLag > 0n && lag.most > maxPartitionLag);

  /** The last send handed to the chain (sends run one after another). */
  let sending: Promise<void> = Promise.resolve();

  /**
   * Sends the queued batches in order, one send in flight at a time (without the idempotent producer,
   * two sends to one partition could land in the wrong order after a retry), while the next batch is
   * encoded: encoding (this thread) overlaps the send and acknowledgement of the one before.
   */
  async function pump(): Promise<void> {
    pumping = true;
    try {
      while (queue.length > 0) {
        if (opts.lingerMs > 0 && queue.length === 1 && !queue[0]!.batch.snapshot) await Bun.sleep(opts.lingerMs);
        const taken = takeMergeable(queue);
        const batch = merge(taken.map((q) => q.batch));
        const encoded = writer.encodeAhead(batch).catch(() => undefined); // a failure is met again, and retried, by write
        const before = sending;
        sending = (async () => {
          try {
            await before;
            while (running && !stop.signal.aborted && tooFarBehind(reader.lag(writer.ends))) await Bun.sleep(10);
            await writer.write(batch, stop.signal, await encoded);
            if (batch.snapshot) {
              await ready;
              await sink!.apply({ tables: new Map(), changes: [], snapshot: batch.snapshot });
            }
            for (const q of taken) q.resolve();
          } catch (e) {
            for (const q of taken) q.reject(e);
            for (const q of queue.splice(0)) q.reject(e); // later batches must not overtake a failed one
            throw e;
          }
        })();
        sending.catch(() => {}); // its publishers hear of a failure
        // At most one batch encoded ahead of the send in flight (memory bounded).
        await before.catch(() => {});
      }
    } finally {
      pumping = false;
    }
  }

  return {
    publishAhead: PUBLISH_AHEAD,
    wireRows: true,
    publish(batch: ChangeBatch, signal?: AbortSignal): Promise<void> {
      if (closed) return Promise.reject(new AppError('BUS_CLOSED', 'the kafka bus is closed'));
      const done = new Promise<void>((resolve, reject) => queue.push({ batch, resolve, reject }));
      if (signal && !watched.has(signal)) {
        watched.add(signal);
        signal.addEventListener('abort', () => stop.abort(), { once: true });
      }
      if (!pumping) void pump();
      return done;
    },
    async run(target: BatchSink, signal: AbortSignal): Promise<void> {
      sink = target;
      attached();
      running = true;
      try {
        await reader.run(target, signal);
      } finally {
        running = false;
      }
    },
    async close(): Promise<void> {
      closed = true;
      stop.abort();
      await writer.close();
      await reader.close();
    },
    status: () => ({ kind: 'kafka', producer: { ...writer.status, thread: writer.thread }, consumer: reader.status }),
    setRecopy(fn: (table: string) => void): void {
      recopy = fn;
    },
    readiness(): BusReadiness {
      if (writer.status.error) return { ready: false, detail: `publishing stalled (source held back): ${writer.status.error}` };
      if (reader.status.error) return { ready: false, detail: `consuming stalled: ${reader.status.error}` };
      const lost = reader.status.partitions.find((p) => p.held?.code === 'KAFKA_OFFSET_OUT_OF_RANGE');
      if (lost) return { ready: false, detail: `KAFKA_OFFSET_OUT_OF_RANGE: ${lost.held!.message}` };
      return { ready: true, detail: `${reader.status.partitions.length} partitions owned` };
    },
  };
}

/** `bus.max_partition_lag`'s default: the per-partition limit when none is configured. */
export const DEFAULT_MAX_PARTITION_LAG = 20_000;

/** Batches the source may hand over before the earlier ones are acknowledged (the queue keeps their order). */
const PUBLISH_AHEAD = 4;

/** Most changes one send carries when merging queued batches (a broker limits a record batch's bytes). */
const MAX_MERGED_CHANGES = 10_000;

/** The queued batches one send may carry: consecutive ones up to MAX_MERGED_CHANGES, a snapshot marker always alone. */
function takeMergeable(queue: Queued[]): Queued[] {
  if (queue[0]!.batch.snapshot) return queue.splice(0, 1);
  const point = queue[0]!.batch.copyPoint;
  let n = 1;
  let changes = queue[0]!.batch.changes.length;
  while (n < queue.length && !queue[n]!.batch.snapshot && queue[n]!.batch.copyPoint === point) {
    changes += queue[n]!.batch.changes.length;
    if (changes > MAX_MERGED_CHANGES) break;
    n++;
  }
  return queue.splice(0, n);
}

function merge(batches: ChangeBatch[]): ChangeBatch {
  if (batches.length === 1) return batches[0]!;
  const tables = new Map(batches.flatMap((b) => [...b.tables]));
  const ackLsn = batches.findLast((b) => b.ackLsn !== undefined)?.ackLsn;
  return { tables, changes: batches.flatMap((b) => b.changes), ackLsn, copyPoint: batches[0]!.copyPoint };
}
