import type { Consumer } from '@platformatic/kafka';
import { type Change, type ColumnSchema, type TableSchema, type TupleValue, UNCHANGED } from '../change/index.ts';
import { decodeEvent, decodeEventIn, LayoutMissing, PoisonError } from './kafka-decode.ts';
import { gotRecordsLast } from './kafka-fetch-order.ts';
import { FetchedRecord, releaseRecords } from './kafka-fetch-parse.ts';
import { readLayouts } from './kafka-layouts.ts';
import type { Entry } from './kafka-select.ts';

/**
 * Fetching and decoding, the consumer's CPU-heavy half (record parsing, decompression, JSON parsing,
 * validation). It runs in a Worker (kafka-fetch-worker.ts) so the main thread keeps the source and the
 * apply path; what crosses the boundary is one compact column set per partition (typed arrays for
 * offsets and positions, a flat array of cells), rebuilt into changes by `unpack`.
 */

/** What to fetch: per leader node, the partitions and the offset to read each from. */
export interface FetchPlan {
  /** Topic names whose metadata to refresh first (after a discovery: leaders may have moved). */
  refresh?: string[];
  wait: boolean;
  /** Fetches to add while they bring records and fewer than `room` were taken (a broker may answer one produce batch per partition). */
  extra?: number;
  room?: number;
  /** The schema topic, read when a payload-only event names a layout not read yet. */
  layoutTopic?: string;
  nodes: { node: number; partitions: { topicId: string; partition: number; fetchOffset: bigint }[] }[];
}

/** The decoded records of one partition as columns. */
export interface Packed {
  offsets: BigInt64Array;
  /** Layout id per record; -1 = poison (see `poison`). */
  layouts: Int32Array;
  ops: string;
  tables: string[];
  /** Row i's cells are cells[rowStart[i] .. rowStart[i + 1]). */
  rowStart: Int32Array;
  cells: (string | null)[];
  /** Indexes into `cells` holding an unchanged TOAST value. */
  unchanged: Int32Array;
  lsn: BigInt64Array;
  commitUs: BigInt64Array;
  pos: BigInt64Array;
  seq: Float64Array;
  ord: Float64Array;
  /** NaN = no transaction id. */
  xid: Float64Array;
  poison: { i: number; code: string; message: string; key?: string; value: Uint8Array }[];
}

export interface PartitionFetch {
  topicId: string;
  partition: number;
  errorCode: number;
  highWatermark: bigint;
  /** The records as columns (from a Worker), or as entries (decoded on the calling thread: nothing to pack). */
  packed?: Packed;
  entries?: Entry[];
}

export interface FetchResult {
  partitions: PartitionFetch[];
  /** Layouts first used in this result: id -> columns. */
  layouts: [number, ColumnSchema[]][];
}

type RecordBatch = { firstOffset: bigint; records: { offsetDelta: number; key?: Buffer | null; value?: Buffer | null }[] };

const EMPTY = Buffer.alloc(0);
/**
 * How long an idle fetch lets the broker wait for data. A real broker answers as soon as data arrives
 * (long poll); librdkafka's mock answers only after the whole wait with what it held when asked, so a
 * long wait adds its length to commit-to-queryable latency. Short: more requests while idle, no more.
 */
const IDLE_WAIT_MS = 20;

/** Assigns small ids to layouts (by identity: decodeEvent caches one array per schema block). */
export class LayoutIds {
  private readonly ids = new Map<ColumnSchema[], number>();
  private fresh: [number, ColumnSchema[]][] = [];

  id(columns: ColumnSchema[]): number {
    let id = this.ids.get(columns);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(columns, id);
      this.fresh.push([id, columns]);
    }
    return id;
  }

  takeFresh(): [number, ColumnSchema[]][] {
    const out = this.fresh;
    this.fresh = [];
    return out;
  }
}

/**
 * Runs the plan's fetches (one per node), then up to `extra` more from where each partition's records
 * ended while they bring records and fewer than `room` were taken: all in one call, so a Worker answers
 * a whole fill at once. A partition may appear several times in the result, in fetch order.
 */
export async function fillAndPack(consumer: Consumer, plan: FetchPlan, ids: LayoutIds | null): Promise<FetchResult> {
  const out = await fetchAndPack(consumer, plan, ids);
  const next = new Map<string, bigint>();
  const from = new Map<string, bigint>(plan.nodes.flatMap((n) => n.partitions.map((p) => [`${p.topicId}/${p.partition}`, p.fetchOffset] as const)));
  /** Some partition's log goes on past what was fetched: asking again brings more at once. */
  let behind = false;
  /** Partitions that brought records in the last fetch: named last in the next (kafka-fetch-order.ts). */
  const served = new Set<string>();
  const taken = (r: FetchResult) => {
    let n = 0;
    behind = false;
    served.clear();
    for (const p of r.partitions) {
      if (p.errorCode !== 0) return -1;
      const count = p.packed?.offsets.length ?? p.entries!.length;
      const last = p.packed ? p.packed.offsets[count - 1] : p.entries![count - 1]?.offset;
      const id = `${p.topicId}/${p.partition}`;
      if (count > 0) {
        next.set(id, last! + 1n);
        served.add(id);
      }
      if (p.highWatermark > (next.get(id) ?? from.get(id) ?? 0n)) behind = true; // a broker may answer some partitions empty
      n += count;
    }
    return n;
  };
  let got = taken(out);
  let total = got;
  // Only while the brokers hold more than they answered: fetching on behind a live stream would hold
  // what was fetched back from the warehouse (latency) for records that arrive one batch at a time.
  for (let i = 0; i < (plan.extra ?? 0) && got >= 0 && behind && total < (plan.room ?? Number.POSITIVE_INFINITY); i++) {
    const again: FetchPlan = {
      wait: false,
      layoutTopic: plan.layoutTopic,
      nodes: plan.nodes.map((n) => ({
        node: n.node,
        partitions: gotRecordsLast(n.partitions, served).map((p) => ({ ...p, fetchOffset: next.get(`${p.topicId}/${p.partition}`) ?? p.fetchOffset })),
      })),
    };
    const r = await fetchAndPack(consumer, again, ids);
    out.partitions.push(...r.partitions);
    out.layouts.push(...r.layouts);
    got = taken(r);
    total += got;
  }
  return out;
}

/** Runs one fetch per node of the plan and decodes every record: into columns with `ids` (for a Worker's answer), else into entries. */
export async function fetchAndPack(consumer: Consumer, plan: FetchPlan, ids: LayoutIds | null): Promise<FetchResult> {
  if (plan.refresh) await consumer.metadata({ topics: plan.refresh, forceUpdate: true });
  const partitions: PartitionFetch[] = [];
  await Promise.all(
    plan.nodes.map(async ({ node, partitions: wanted }) => {
      const byTopic = new Map<string, { partition: number; fetchOffset: bigint; partitionMaxBytes: number; currentLeaderEpoch: number; lastFetchedEpoch: number }[]>();
      for (const w of wanted) {
        const list = byTopic.get(w.topicId) ?? [];
        list.push({ partition: w.partition, fetchOffset: w.fetchOffset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 });
        byTopic.set(w.topicId, list);
      }
      const res = await consumer
        .fetch({
          node,
          maxWaitTime: plan.wait ? IDLE_WAIT_MS : 0,
          minBytes: 1,
          maxBytes: 8 << 20,
          topics: [...byTopic].map(([topicId, list]) => ({ topicId, partitions: list })),
        })
        .catch((e: unknown) => responseOf(e) ?? Promise.reject(e)); // partition errors: the caller sees each code
      for (const t of res.responses) {
        for (const pr of t.partitions) {
          const from = wanted.find((w) => w.topicId === t.topicId && w.partition === pr.partitionIndex)?.fetchOffset ?? 0n;
          const records = (pr.records ?? []) as RecordBatch[];
          const decode = (missingIsPoison: boolean) =>
            ids ? { packed: pack(records, from, ids, missingIsPoison) } : { entries: decodeRecords(records, from, missingIsPoison) };
          let decoded: ReturnType<typeof decode>;
          try {
            decoded = decode(!plan.layoutTopic);
          } catch (e) {
            if (!(e instanceof LayoutMissing)) throw e;
            await readLayouts(consumer, plan.layoutTopic!); // published before any event naming it: there now
            decoded = decode(true);
          }
          partitions.push({ topicId: t.topicId, partition: pr.partitionIndex, errorCode: pr.errorCode, highWatermark: pr.highWatermark, ...decoded });
        }
      }
      releaseRecords(res); // every record decoded (strings; poison values copied): its memory serves the next responses
    }),
  );
  return { partitions, layouts: ids?.takeFresh() ?? [] };
}

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;

/** The broker's answer inside the client's error for a response with partition errors (e.g. OFFSET_OUT_OF_RANGE). */
function responseOf(e: unknown): FetchResponse | undefined {
  let cur = e as { response?: unknown; errors?: unknown[]; cause?: unknown } | undefined;
  for (let i = 0; cur && i < 4; i++) {
    const r = cur.response as FetchResponse | undefined;
    if (r && Array.isArray(r.responses)) return r;
    cur = (cur.errors?.[0] ?? cur.cause) as typeof cur;
  }
  return undefined;
}

/**
 * Decodes the records at or after `from` (a broker may return a batch starting earlier). A layout id not
 * read from the schema topic throws LayoutMissing, or with `missingIsPoison` makes the event poison.
 */
export function decodeRecords(batches: RecordBatch[], from: bigint, missingIsPoison = true): Entry[] {
  const out: Entry[] = [];
  for (const b of batches) {
    for (const r of b.records) {
      const offset = b.firstOffset + BigInt(r.offsetDelta);
      if (offset < from) continue;
      try {
        // Our record reader's records are decoded where they lie (no subarray); other records (tests) through their value.
        const decoded = r instanceof FetchedRecord && r.valueAt >= 0 ? decodeEventIn(r.data, r.valueAt, r.valueEnd) : decodeEvent(r.value ?? EMPTY);
        out.push({ offset, decoded });
      } catch (e) {
        if (e instanceof LayoutMissing && !missingIsPoison) throw e;
        const poison = e instanceof PoisonError ? e : e instanceof LayoutMissing ? new PoisonError('NOT_ENVELOPE', e.message) : new PoisonError('BAD_EVENT', String(e));
        // A copy: the records' memory is reused (releaseRecords).
        out.push({ offset, poison, key: r.key?.toString(), value: Buffer.from(r.value ?? EMPTY) });
      }
    }
  }
  return out;
}

/** Decodes the records at or after `from` into columns. */
export function pack(batches: RecordBatch[], from: bigint, ids: LayoutIds, missingIsPoison = true): Packed {
  const decoded = decodeRecords(batches, from, missingIsPoison);
  const n = decoded.length;
  const p: Packed = {
    offsets: new BigInt64Array(n), layouts: new Int32Array(n), ops: '', tables: new Array(n), rowStart: new Int32Array(n + 1),
    cells: [], unchanged: new Int32Array(0), lsn: new BigInt64Array(n), commitUs: new BigInt64Array(n), pos: new BigInt64Array(n),
    seq: new Float64Array(n), ord: new Float64Array(n), xid: new Float64Array(n), poison: [],
  };
  const unchanged: number[] = [];
  let ops = '';
  for (let i = 0; i < n; i++) {
    const e = decoded[i]!;
    p.offsets[i] = e.offset;
    p.rowStart[i] = p.cells.length;
    if ('poison' in e) {
      p.layouts[i] = -1;
      ops += '-';
      p.tables[i] = '';
      p.poison.push({ i, code: e.poison.code, message: e.poison.message, key: e.key, value: new Uint8Array(e.value) });
      continue;
    }
    const { change: c, table, pos, ord } = e.decoded;
    p.layouts[i] = ids.id(table.columns);
    ops += c.op;
    p.tables[i] = c.table;
    for (const v of c.row) {
      if (v === UNCHANGED) {
        unchanged.push(p.cells.length);
        p.cells.push(null);
      } else p.cells.push(v as string | null);
    }
    p.lsn[i] = c.lsn;
    p.commitUs[i] = c.commitTimeUs;
    p.pos[i] = pos;
    p.seq[i] = c.seq;
    p.ord[i] = ord;
    p.xid[i] = c.xid ?? Number.NaN;
  }
  p.rowStart[n] = p.cells.length;
  p.ops = ops;
  p.unchanged = Int32Array.from(unchanged);
  return p;
}

/** Rebuilds the records after `after` as entries; `table` gives the (shared) TableSchema of a layout id and table name. */
export function unpack(p: Packed, after: bigint, table: (layout: number, name: string) => TableSchema): Entry[] {
  const out: Entry[] = [];
  const unchanged = new Set(p.unchanged);
  let poisonAt = 0;
  for (let i = 0; i < p.offsets.length; i++) {
    const offset = p.offsets[i]!;
    const layout = p.layouts[i]!;
    if (layout < 0) {
      const x = p.poison[poisonAt++]!;
      if (offset > after) out.push({ offset, poison: new PoisonError(x.code, x.message), key: x.key, value: Buffer.from(x.value) });
      continue;
    }
    if (offset <= after) continue;
    const row: TupleValue[] = [];
    for (let j = p.rowStart[i]!; j < p.rowStart[i + 1]!; j++) row.push(unchanged.has(j) ? UNCHANGED : p.cells[j]!);
    const name = p.tables[i]!;
    const change: Change = { op: p.ops[i] as Change['op'], table: name, row, lsn: p.lsn[i]!, seq: p.seq[i]!, commitTimeUs: p.commitUs[i]! };
    if (!Number.isNaN(p.xid[i]!)) change.xid = p.xid[i]!;
    out.push({ offset, decoded: { change, table: table(layout, name), pos: p.pos[i]!, ord: p.ord[i]! } });
  }
  return out;
}

/** The typed arrays' buffers, to transfer instead of copying. */
export function transferables(r: FetchResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const { packed: p } of r.partitions) {
    if (!p) continue;
    for (const a of [p.offsets, p.layouts, p.rowStart, p.unchanged, p.lsn, p.commitUs, p.pos, p.seq, p.ord, p.xid]) out.push(a.buffer as ArrayBuffer);
    for (const x of p.poison) out.push(x.value.buffer as ArrayBuffer);
  }
  return out;
}
