import { Admin, Consumer } from '@platformatic/kafka';
import type { BatchSink, Change, ColumnSchema, PartitionOffset, TableSchema } from '../change/index.ts';
import type { Decoded, PoisonError } from './kafka-codec.ts';
import { type Entry, type FetchPlan, unpack } from './kafka-fetch.ts';
import { createFetcher, type Fetcher } from './kafka-fetcher.ts';
import { describe, sleep } from './kafka-producer.ts';
import type { KafkaBusOptions } from './kafka.ts';

/** One owned partition: where we read, where the last applied change stands, what is fetched but not applied. */
interface Owned {
  topic: string;
  topicId: string;
  partition: number;
  next: bigint;
  lsn: bigint;
  ord: number;
  highWatermark: bigint;
  buffer: Entry[];
}

/** Per-partition consumer status for /v1/status. */
export interface PartitionStatus {
  topic: string;
  partition: number;
  nextOffset: string;
  highWatermark: string;
  lag: string;
}

export interface ConsumerStatus {
  partitions: PartitionStatus[];
  applied: number;
  deadLetters: number;
  duplicatesSkipped: number;
  error: string | null;
}

/** What the reader needs from the rest of the bus. */
export interface ReaderDeps {
  loadOffsets(): Promise<PartitionOffset[]>;
  deadLetter(topic: string, key: string | undefined, value: Buffer, headers: Map<string, string>, signal: AbortSignal): Promise<void>;
  log(message: string): void;
}

const DISCOVER_EVERY_MS = 1_000;
/** Extra fetches per round while they bring records and the buffers hold less than a batch. */
const MAX_EXTRA_FETCHES = 16;

/**
 * Reads the owned partitions (p % instances == instance) of every `<prefix>.*` topic by explicit
 * assignment and applies them in batches. Each batch carries the next offset of the partitions it
 * read, which the warehouse stores in the same transaction as the rows (exactly-once effect).
 * Per-key order holds because a key always maps to one partition; a truncate is applied once every
 * owned partition of its topic has reached it, so it cuts every partition at the same point.
 */
export class KafkaReader {
  readonly status: ConsumerStatus = { partitions: [], applied: 0, deadLetters: 0, duplicatesSkipped: 0, error: null };
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly fetcher: Fetcher;
  private readonly owned = new Map<string, Owned>();
  private discoveredAt = 0;
  /** Topics whose metadata the fetcher refreshes before its next fetch (set by discovery). */
  private refresh: string[] | undefined;
  /** Layouts by the fetcher's id, and one TableSchema per layout and table (batches compare layouts by identity). */
  private readonly layouts = new Map<number, ColumnSchema[]>();
  private readonly tables = new Map<string, TableSchema>();

  constructor(
    private readonly opts: KafkaBusOptions,
    private readonly deps: ReaderDeps,
  ) {
    const base = { bootstrapBrokers: opts.brokers, retries: 1, retryDelay: 100, timeout: 5_000, connectTimeout: 2_000 };
    this.consumer = new Consumer({
      ...base,
      groupId: `ducktail-${opts.topicPrefix}`, // required by the constructor; no group request is ever sent
      clientId: `ducktail-${opts.instance}-consumer`,
    });
    this.admin = new Admin({ ...base, clientId: `ducktail-${opts.instance}-reader-admin` });
    this.fetcher = createFetcher(
      { brokers: opts.brokers, groupId: `ducktail-${opts.topicPrefix}`, clientId: `ducktail-${opts.instance}-fetcher`, worker: opts.fetchWorker ?? false },
      deps.log,
    );
  }

  async run(sink: BatchSink, signal: AbortSignal): Promise<void> {
    const stored = new Map((await this.deps.loadOffsets()).map((o) => [`${o.topic}/${o.partition}`, o]));
    let backoff = 100;
    while (!signal.aborted) {
      try {
        if (Date.now() - this.discoveredAt > DISCOVER_EVERY_MS) await this.discover(stored);
        await this.fill();
        await this.applyBuffered(sink, signal);
        this.status.error = null;
        backoff = 100;
      } catch (e) {
        if (signal.aborted) break;
        if (this.status.error === null) this.deps.log(`kafka: consumer error, retrying: ${describe(e)}`);
        this.status.error = describe(e);
        this.discoveredAt = 0; // refresh leaders
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 2_000);
      }
      this.refreshStatus();
    }
  }

  /** Finds `<prefix>.*` topics and takes the partitions this instance owns. */
  private async discover(stored: Map<string, PartitionOffset>): Promise<void> {
    const names = (await this.admin.listTopics()).filter((name) => name.startsWith(`${this.opts.topicPrefix}.`));
    const md = await this.consumer.metadata({ topics: names, forceUpdate: true });
    for (const [name, t] of md.topics) {
      for (let p = 0; p < t.partitionsCount; p++) {
        if (p % this.opts.instances !== this.opts.instance) continue;
        const id = `${name}/${p}`;
        const known = this.owned.get(id);
        if (known) {
          known.topicId = t.id;
          continue;
        }
        const s = stored.get(id);
        this.owned.set(id, {
          topic: name,
          topicId: t.id,
          partition: p,
          next: s?.next ?? 0n,
          lsn: s?.lsn ?? 0n,
          ord: s?.ord ?? -1,
          highWatermark: 0n,
          buffer: [],
        });
      }
    }
    this.discoveredAt = Date.now();
    this.refresh = names;
    this.leaders = new Map();
    for (const o of this.owned.values()) {
      const leader = md.topics.get(o.topic)?.partitions[o.partition]?.leader;
      if (leader !== undefined && leader >= 0) {
        const list = this.leaders.get(leader) ?? [];
        list.push(o);
        this.leaders.set(leader, list);
      }
    }
  }

  private leaders = new Map<number, Owned[]>();

  /** One fetch per leader for the partitions whose buffer has room, after what is buffered; returns records taken. */
  private async fetchAll(wait: boolean): Promise<number> {
    const plan: FetchPlan = { refresh: this.refresh, wait, extra: MAX_EXTRA_FETCHES, room: this.opts.batchRows - this.buffered(), nodes: [] };
    const byPartition = new Map<string, Owned>();
    for (const [node, parts] of this.leaders) {
      const wanted = parts.filter((o) => o.buffer.length < this.opts.batchRows);
      if (wanted.length === 0) continue;
      plan.nodes.push({ node, partitions: wanted.map((o) => ({ topicId: o.topicId, partition: o.partition, fetchOffset: fetchAt(o) })) });
      for (const o of wanted) byPartition.set(`${o.topicId}/${o.partition}`, o);
    }
    if (plan.nodes.length === 0) {
      // Nothing owned yet (no topic) or every buffer full: wait like a fetch would instead of spinning.
      if (wait) await Bun.sleep(100);
      return 0;
    }
    const res = await this.fetcher.fetch(plan);
    this.refresh = undefined;
    for (const [id, columns] of res.layouts) this.layouts.set(id, columns);
    let taken = 0;
    for (const pr of res.partitions) {
      const o = byPartition.get(`${pr.topicId}/${pr.partition}`);
      if (!o) continue;
      if (pr.errorCode !== 0) throw new Error(`fetch ${o.topic}[${o.partition}] failed with Kafka error ${pr.errorCode}`);
      o.highWatermark = pr.highWatermark;
      const entries = unpack(pr.packed, o.buffer.at(-1)?.offset ?? o.next - 1n, (layout, name) => this.tableOf(layout, name));
      for (const e of entries) o.buffer.push(e);
      taken += entries.length;
    }
    return taken;
  }

  private tableOf(layout: number, name: string): TableSchema {
    const key = `${layout}/${name}`;
    let t = this.tables.get(key);
    if (!t) {
      const dot = name.indexOf('.');
      t = { schema: name.slice(0, dot), table: name.slice(dot + 1), columns: this.layouts.get(layout)! };
      this.tables.set(key, t);
    }
    return t;
  }

  /** Fetches until the buffers hold a batch or the brokers have nothing more (a broker may answer one produce batch per partition). */
  private async fill(): Promise<void> {
    const idle = [...this.owned.values()].every((o) => o.buffer.length === 0);
    await this.fetchAll(idle); // with its extra fetches, done by the fetcher in one call
  }

  private buffered(): number {
    let n = 0;
    for (const o of this.owned.values()) n += o.buffer.length;
    return n;
  }

  /** Builds one batch from the buffers (respecting truncate barriers), dead-letters poison, applies it. */
  private async applyBuffered(sink: BatchSink, signal: AbortSignal): Promise<void> {
    const changes: Change[] = [];
    const tables = new Map<string, TableSchema>();
    const touched = new Set<Owned>();
    let ackLsn = 0n;
    const limit = this.opts.batchRows;
    let progress = true;
    let cut = false;
    // One layout per table per batch, and a copy's reset first for its table (the applier replaces the mirror then).
    const fits = (d: Decoded) => {
      const known = tables.get(d.change.table);
      if (known && known.columns !== d.table.columns) return false;
      return !(d.change.op === 'T' && d.change.lsn === 0n && changes.some((c) => c.table === d.change.table));
    };
    while (progress && !cut && changes.length < limit) {
      progress = false;
      for (const o of this.owned.values()) {
        if (cut) break;
        while (changes.length < limit) {
          const head = o.buffer[0];
          if (!head) break;
          if ('poison' in head) {
            await this.deadLetter(o, head, signal);
          } else if (before(head.decoded, o)) {
            this.status.duplicatesSkipped++; // written twice by a producer retry (or a source restart)
          } else if (head.decoded.change.op === 'T') {
            if (!this.truncateReady(o.topic, head.decoded)) break;
            const d = head.decoded;
            if (!fits(d)) {
              cut = true;
              break;
            }
            for (const other of this.partitionsOf(o.topic)) this.advance(other, other.buffer.shift()!.offset, d, touched);
            changes.push(d.change);
            tables.set(d.change.table, d.table);
            progress = true;
            continue;
          } else {
            const d = head.decoded;
            if (!fits(d)) {
              cut = true;
              break;
            }
            changes.push(d.change);
            tables.set(d.change.table, d.table);
            if (d.change.lsn > ackLsn) ackLsn = d.change.lsn;
          }
          o.buffer.shift();
          this.advance(o, head.offset, 'decoded' in head ? head.decoded : undefined, touched);
          progress = true;
        }
      }
    }
    if (touched.size === 0) return;
    const offsets: PartitionOffset[] = [...touched].map((o) => ({ topic: o.topic, partition: o.partition, next: o.next, lsn: o.lsn, ord: o.ord }));
    await sink.apply({ tables, changes, offsets, ackLsn: ackLsn > 0n ? ackLsn : undefined });
    this.status.applied += changes.length;
  }

  private advance(o: Owned, offset: bigint, d: Decoded | undefined, touched: Set<Owned>): void {
    o.next = offset + 1n;
    if (d && !before(d, o)) {
      o.lsn = d.pos;
      o.ord = d.ord;
    }
    touched.add(o);
  }

  private partitionsOf(topic: string): Owned[] {
    return [...this.owned.values()].filter((o) => o.topic === topic);
  }

  /** Every owned partition of the topic has this truncate at the head of its buffer. */
  private truncateReady(topic: string, d: Decoded): boolean {
    return this.partitionsOf(topic).every((o) => {
      const h = o.buffer[0];
      return h !== undefined && 'decoded' in h && h.decoded.change.op === 'T' && h.decoded.pos === d.pos && h.decoded.ord === d.ord;
    });
  }

  private async deadLetter(o: Owned, e: { offset: bigint; poison: PoisonError; key?: string; value: Buffer }, signal: AbortSignal): Promise<void> {
    const headers = new Map([
      ['ducktail.error.code', e.poison.code],
      ['ducktail.error.message', e.poison.message],
      ['ducktail.source.topic', o.topic],
      ['ducktail.source.partition', String(o.partition)],
      ['ducktail.source.offset', String(e.offset)],
    ]);
    await this.deps.deadLetter(this.opts.deadLetterTopic, e.key, e.value, headers, signal);
    this.status.deadLetters++;
    this.deps.log(`kafka: ${o.topic}[${o.partition}]@${e.offset} sent to ${this.opts.deadLetterTopic}: ${e.poison.code}: ${e.poison.message}`);
  }

  /** Messages on the owned partitions not applied yet (as of the last fetch of each). */
  lag(ends: ReadonlyMap<string, bigint> = new Map()): bigint {
    let total = 0n;
    for (const o of this.owned.values()) {
      const end = ends.get(`${o.topic}/${o.partition}`) ?? 0n;
      const hw = end > o.highWatermark ? end : o.highWatermark;
      if (hw > o.next) total += hw - o.next;
    }
    return total;
  }

  private refreshStatus(): void {
    this.status.partitions = [...this.owned.values()].map((o) => ({
      topic: o.topic,
      partition: o.partition,
      nextOffset: String(o.next),
      highWatermark: String(o.highWatermark),
      lag: String(o.highWatermark > o.next ? o.highWatermark - o.next : 0n),
    }));
  }

  async close(): Promise<void> {
    await this.fetcher.close();
    await this.consumer.close(true).catch(() => {});
    await this.admin.close().catch(() => {});
  }
}

/** The next offset to fetch: after what is buffered, else the next to apply. */
function fetchAt(o: Owned): bigint {
  const last = o.buffer.at(-1);
  return last ? last.offset + 1n : o.next;
}

/** The event is at or before the partition's last applied change. */
function before(d: Decoded, o: Owned): boolean {
  return d.pos < o.lsn || (d.pos === o.lsn && d.ord <= o.ord);
}
