import type { ChangeBatch } from '../change/index.ts';
import { AppError } from '../errors.ts';
import { packBatch, packedTransferables, TableIds } from './kafka-batch-pack.ts';
import type { ProduceReply, ProduceRequest, ProduceState } from './kafka-produce-worker.ts';
import { KafkaWriter, type ProducerStatus } from './kafka-producer.ts';
import type { KafkaBusOptions } from './kafka.ts';
import { workerUrl } from './worker-url.ts';

/**
 * What the Kafka bus needs of its producer: KafkaWriter itself (on this thread), or ProducerThread, the
 * same KafkaWriter in a Worker. `encodeAhead` starts a batch's encoding before its turn; `write` sends
 * it and resolves once every broker replica acknowledged all of it (retrying until then).
 */
export interface BusWriter {
  readonly status: ProducerStatus;
  /** Where encoding and sending run: 'worker', or 'main' (by config, or because the Worker failed). */
  readonly thread: 'worker' | 'main';
  /** Log end offset of every partition written, as of the last acknowledged send ("topic/partition"). */
  readonly ends: Map<string, bigint>;
  encodeAhead(batch: ChangeBatch): Promise<unknown>;
  write(batch: ChangeBatch, signal: AbortSignal, encoded?: unknown): Promise<void>;
  sendRaw(topic: string, key: string | undefined, value: Buffer, headers: Map<string, string>, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A Worker that has not answered its `open` by then is taken as unable to start (e.g. its file is missing). */
const START_TIMEOUT_MS = 10_000;

type Waiting = { resolve(): void; reject(e: unknown): void; retry(): Promise<void> };

/**
 * The producer in a Worker thread (kafka-produce-worker.ts): the JSON events, record batches, sends and
 * retries run there, so this thread (the source, the consumer and the warehouse's apply) overlaps with
 * them instead of taking turns. A batch crosses packed (kafka-batch-pack.ts, ~0.3 µs a change against
 * ~4 µs of encoding and sending it here). Order, acknowledgement and backpressure are the bus's as
 * before: `write` resolves only on the Worker's answer that every replica acknowledged the batch, the
 * bus hands it one write at a time, and at most one batch is encoded ahead. The Worker's status (a send
 * retrying, KAFKA_MESSAGE_TOO_LARGE) and partition ends come back with every change, for /readyz and
 * the lag limit. If the Worker cannot start or dies, the writes go on with a KafkaWriter on this thread
 * (a write in flight then is sent again from here: a retry, as after a failed send).
 */
export class ProducerThread implements BusWriter {
  private readonly worker: Worker;
  private readonly ids = new TableIds();
  private readonly waiting = new Map<number, Waiting>();
  private next = 0;
  private readonly shown: ProducerStatus = { published: 0, messages: 0, error: null, retries: 0 };
  private readonly shownEnds = new Map<string, bigint>();
  /** Set once the Worker failed: everything goes to this thread's writer. */
  private local: KafkaWriter | undefined;
  private readonly ready: Promise<void>;
  private started: () => void = () => {};
  private closed: (() => void) | undefined;
  private closing = false;
  private readonly watched = new WeakSet<AbortSignal>();

  constructor(
    private readonly opts: KafkaBusOptions,
    private readonly log: (m: string) => void,
    /** The Worker's module (tests name one that cannot start). */
    url = workerUrl('kafka-produce-worker'),
  ) {
    this.ready = new Promise<void>((resolve) => (this.started = resolve));
    this.worker = new Worker(url);
    this.worker.onmessage = (event: MessageEvent<ProduceReply>) => this.answer(event.data);
    this.worker.onerror = (event: ErrorEvent) => this.fail(event.message || 'worker error');
    const timer = setTimeout(() => this.fail(`no answer within ${START_TIMEOUT_MS} ms of starting`), START_TIMEOUT_MS);
    void this.ready.then(() => clearTimeout(timer));
    this.post({ type: 'open', opts });
  }

  get status(): ProducerStatus {
    return this.local?.status ?? this.shown;
  }

  get thread(): 'worker' | 'main' {
    return this.local ? 'main' : 'worker';
  }

  get ends(): Map<string, bigint> {
    return this.local?.ends ?? this.shownEnds;
  }

  private post(m: ProduceRequest, transfer: Transferable[] = []): void {
    this.worker.postMessage(m, transfer);
  }

  private note(s: ProduceState): void {
    Object.assign(this.shown, s.status);
    for (const [k, v] of s.ends) this.shownEnds.set(k, v);
  }

  private answer(r: ProduceReply): void {
    if ('ready' in r) return this.started();
    if ('closed' in r) return this.closed?.();
    if ('log' in r) return this.log(r.log);
    this.note(r);
    if ('state' in r) return;
    const w = this.waiting.get(r.id);
    this.waiting.delete(r.id);
    if (!w) return;
    if (r.error) w.reject(new AppError(r.error.code ?? 'KAFKA_PRODUCE', r.error.message));
    else w.resolve();
  }

  /** The Worker failed: this thread's writer takes over, the writes in flight are sent again from here. */
  private fail(why: string): void {
    if (this.local) return;
    if (this.closing) {
      for (const w of this.waiting.values()) w.reject(new AppError('ABORTED', 'publish aborted: the bus is stopping'));
      this.waiting.clear();
      return;
    }
    this.log(`kafka: producer worker failed (${why}); producing on the main thread from now on`);
    this.local = new KafkaWriter(this.opts, this.log);
    for (const [k, v] of this.shownEnds) this.local.ends.set(k, v);
    this.started();
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.retry().then(w.resolve, w.reject);
    this.worker.terminate();
  }

  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener('abort', () => this.local || this.post({ type: 'abort' }), { once: true });
  }

  /** Packs the batch and hands it to the Worker to encode; resolves to its id for `write`. */
  async encodeAhead(batch: ChangeBatch): Promise<number> {
    const id = this.next++;
    if (this.local) return id;
    const packed = packBatch(batch, this.ids);
    this.post({ type: 'encode', id, batch: packed }, packedTransferables(packed));
    return id;
  }

  async write(batch: ChangeBatch, signal: AbortSignal, encoded?: unknown): Promise<void> {
    await this.ready;
    if (this.local) return this.local.write(batch, signal);
    this.watch(signal);
    const id = typeof encoded === 'number' ? encoded : await this.encodeAhead(batch);
    if (this.local) return (this.local as KafkaWriter).write(batch, signal);
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, retry: () => this.local!.write(batch, signal) });
      this.post({ type: 'write', id });
    });
  }

  async sendRaw(topic: string, key: string | undefined, value: Buffer, headers: Map<string, string>, signal: AbortSignal): Promise<void> {
    await this.ready;
    if (this.local) return this.local.sendRaw(topic, key, value, headers, signal);
    this.watch(signal);
    const id = this.next++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, retry: () => this.local!.sendRaw(topic, key, value, headers, signal) });
      this.post({ type: 'raw', id, topic, key, value: new Uint8Array(value), headers: [...headers] });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.local) return this.local.close();
    const done = new Promise<void>((resolve) => (this.closed = resolve));
    this.post({ type: 'close' });
    await Promise.race([done, Bun.sleep(2_000)]);
    this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(new AppError('ABORTED', 'publish aborted: the bus is stopping'));
    this.waiting.clear();
  }
}
