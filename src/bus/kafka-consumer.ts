import { Admin, Consumer } from '@platformatic/kafka';
import type { BatchSink, ColumnSchema, PartitionOffset, TableSchema } from '../change/index.ts';
import { RecopyNeeded } from '../errors.ts';
import type { PoisonError } from './kafka-decode.ts';
import { schemaTopicName } from './kafka-encode.ts';
import { type FetchPlan, unpack } from './kafka-fetch.ts';
import { createFetcher, type Fetcher } from './kafka-fetcher.ts';
import { FetchOrder } from './kafka-fetch-order.ts';
import { Holds } from './kafka-holds.ts';
import { describe, sleep } from './kafka-producer.ts';
import { commitSelection, type Owned, offsetsOf, type Selection, selectBatch } from './kafka-select.ts';
import { type ConsumerStatus, partitionStatus, unread } from './kafka-status.ts';
import type { KafkaBusOptions } from './kafka.ts';

/** Kafka's error code for a fetch offset outside the partition's log (deleted by retention, or never written). */
const OFFSET_OUT_OF_RANGE = 1;

/** What the reader needs from the rest of the bus. */
export interface ReaderDeps {
  loadOffsets(): Promise<PartitionOffset[]>;
  deadLetter(topic: string, key: string | undefined, value: Buffer, headers: Map<string, string>, signal: AbortSignal): Promise<void>;
  /** The source's re-copy of one table ("schema.table"), when this instance reads the slot; throws while it cannot start one. */
  recopy?(): ((table: string) => void) | undefined;
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
  readonly status: ConsumerStatus = {
    partitions: [], applied: 0, deadLetters: 0, duplicatesSkipped: 0, supersededSkipped: 0, offsetOutOfRange: 0, error: null,
  };
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
  /** The batch being applied (its entries stay buffered until it commits). */
  private selection: Selection | null = null;
  private readonly holds: Holds;
  /** Offset of the last poison message sent to the dead-letter topic, per partition. */
  private readonly deadLettered = new WeakMap<Owned, bigint>();
  /** Least recently served partitions first in each request: a broker leaves the last ones out at max_bytes. */
  private readonly order = new FetchOrder<Owned>();

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
    this.holds = new Holds(opts.topicPrefix, this.status, deps, this.consumer);
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
        this.holds.requestCopies();
        await this.round(sink, signal);
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
          readAt: s?.next ?? 0n,
          lsn: s?.lsn ?? 0n,
          ord: s?.ord ?? -1,
          highWatermark: 0n,
          buffer: [],
          hold: null,
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
    const plan: FetchPlan = {
      refresh: this.refresh, wait, extra: MAX_EXTRA_FETCHES, room: this.opts.batchRows - this.buffered(), layoutTopic: schemaTopicName(this.opts.topicPrefix), nodes: [],
    };
    const byPartition = new Map<string, Owned>();
    for (const [node, parts] of this.leaders) {
      const wanted = this.order.order(parts.filter((o) => this.left(o) < this.opts.batchRows));
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
      if (pr.errorCode === OFFSET_OUT_OF_RANGE) {
        if (o.buffer.length === 0) await this.holds.outOfRange(o, fetchAt(o));
        continue;
      }
      if (pr.errorCode !== 0) throw new Error(`fetch ${o.topic}[${o.partition}] failed with Kafka error ${pr.errorCode}`);
      o.highWatermark = pr.highWatermark;
      const after = o.buffer.at(-1)?.offset ?? o.readAt - 1n;
      const entries = pr.entries
        ? pr.entries.filter((e) => e.offset > after)
        : unpack(pr.packed!, after, (layout, name) => this.tableOf(layout, name));
      const starvedMs = this.order.answered(o, entries.length, pr.highWatermark > after + 1n);
      if (starvedMs !== undefined) {
        this.deps.log(`kafka: ${o.topic}[${o.partition}]: no records from its fetches for ${Math.round(starvedMs / 1000)} s though the broker holds offsets ${after + 1n} to ${pr.highWatermark - 1n}`);
      }
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

  /** Entries buffered and not in the batch being applied. */
  private left(o: Owned): number {
    return o.buffer.length - (this.selection?.taken.get(o)?.count ?? 0);
  }

  private buffered(): number {
    let n = 0;
    for (const o of this.owned.values()) n += this.left(o);
    return n;
  }

  /** Builds the next batch, fetches the next round while DuckDB applies it, then makes it the partitions' state. */
  private async round(sink: BatchSink, signal: AbortSignal): Promise<void> {
    const buffered = this.buffered();
    if (buffered === 0) await this.fetchAll(true);
    // Fetch (without wait) before choosing unless a whole batch is buffered: the fetch that overlapped the
    // previous apply was sent as that apply started, so what the brokers acknowledged during it goes into
    // this batch, not the next. (Fetching only when that fetch had answered over 25 ms before left it a
    // whole apply behind after every short apply: 40% of the transactions at 5,000 changes/s; docs/PERFORMANCE.md,
    // "Kafka latency".)
    else if (buffered < this.opts.batchRows) await this.fetchAll(false);
    const s = selectBatch(this.owned.values(), this.opts.batchRows);
    this.selection = s;
    // Pipelined: the next fetch (network, gunzip, decode on this thread) overlaps the apply (DuckDB's threads).
    const fetching = this.fetchAll(s.taken.size === 0).then(
      () => null,
      (e: unknown) => ({ e }),
    );
    const applying = await this.applySelection(s, sink, signal).then(
      () => null,
      (e: unknown) => ({ e }),
    );
    this.selection = null;
    const fetched = await fetching; // never two fetches at once
    if (applying) throw applying.e;
    if (fetched) throw fetched.e;
  }

  private async applySelection(s: Selection, sink: BatchSink, signal: AbortSignal): Promise<void> {
    if (s.taken.size === 0) return;
    for (const { o, entry } of s.poison) {
      if (entry.offset <= (this.deadLettered.get(o) ?? -1n)) continue; // sent before a refused apply of the same selection
      await this.deadLetter(o, entry, signal);
      this.deadLettered.set(o, entry.offset);
    }
    try {
      await sink.apply({ tables: s.tables, changes: s.changes, offsets: offsetsOf(s), ackLsn: s.ackLsn > 0n ? s.ackLsn : undefined });
    } catch (e) {
      if (!(e instanceof RecopyNeeded)) throw e;
      this.holds.forCopy(this.owned.values(), e);
      return; // the same entries are selected again, the held tables' skipped
    }
    commitSelection(s);
    this.status.applied += s.changes.length;
    this.status.duplicatesSkipped += s.duplicates;
    this.status.supersededSkipped += s.superseded;
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

  /**
   * Messages on the owned partitions not read yet (as of the last fetch of each, or the producer's `ends`):
   * in all, and in the partition furthest behind. A partition this instance owns but has not discovered yet
   * (a topic the producer just created) counts whole, so the producer cannot run ahead before the consumer
   * finds it.
   */
  lag(ends: ReadonlyMap<string, bigint> = new Map()): { total: bigint; most: bigint } {
    let total = 0n;
    let most = 0n;
    const add = (n: bigint) => {
      total += n;
      if (n > most) most = n;
    };
    for (const o of this.owned.values()) add(unread(o, ends.get(`${o.topic}/${o.partition}`)));
    for (const [id, end] of ends) {
      const slash = id.lastIndexOf('/');
      if (this.owned.has(id) || !id.startsWith(`${this.opts.topicPrefix}.`)) continue;
      if (Number(id.slice(slash + 1)) % this.opts.instances === this.opts.instance) add(end);
    }
    return { total, most };
  }

  private refreshStatus(): void {
    this.status.partitions = [...this.owned.values()].map(partitionStatus);
  }

  async close(): Promise<void> {
    await this.fetcher.close();
    await this.consumer.close(true).catch(() => {});
    await this.admin.close().catch(() => {});
  }
}

/** The next offset to fetch: after what is buffered, else after what was taken from the buffer. */
function fetchAt(o: Owned): bigint {
  const last = o.buffer.at(-1);
  return last ? last.offset + 1n : o.readAt;
}
