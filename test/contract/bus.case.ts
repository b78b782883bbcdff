/**
 * The Bus contract, shared by every implementation: each implementation's test calls `busContract`
 * with a harness that can make its downstream unavailable (a stalled warehouse, brokers down).
 */
import { afterEach, describe, expect, test } from 'bun:test';
import type { Bus } from '../../src/bus/index.ts';
import type { BatchSink, Change, ChangeBatch, PartitionOffset, TableSchema } from '../../src/change/index.ts';

export const ITEMS: TableSchema = {
  schema: 'public',
  table: 'items',
  columns: [
    { name: 'id', key: true, typeOid: 23, typeMod: -1 },
    { name: 'v', key: false, typeOid: 25, typeMod: -1 },
  ],
};

/** A sink that records what it applies and can be held (a stalled warehouse). */
export class Recorder implements BatchSink {
  readonly changes: Change[] = [];
  readonly offsets = new Map<string, PartitionOffset>();
  applies = 0;
  private gate: Promise<void> | null = null;
  private open: () => void = () => {};

  async apply(batch: ChangeBatch): Promise<void> {
    if (this.gate) await this.gate;
    this.applies++;
    this.changes.push(...batch.changes);
    for (const o of batch.offsets ?? []) this.offsets.set(`${o.topic}/${o.partition}`, o);
  }
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.gate = null;
    this.open();
  }
  async waitFor(n: number, ms = 15_000): Promise<void> {
    const until = Date.now() + ms;
    while (this.changes.length < n) {
      if (Date.now() > until) throw new Error(`sink has ${this.changes.length} changes, expected ${n}`);
      await Bun.sleep(20);
    }
  }
}

export interface BusHarness {
  bus: Bus;
  /** Makes the downstream unavailable (inline: the sink stalls; kafka: every broker down). */
  block(sink: Recorder): Promise<void>;
  unblock(sink: Recorder): Promise<void>;
  /** Every change durable on the bus, read by a fresh reader (inline: what the sink committed). */
  reread(sink: Recorder, n: number): Promise<Change[]>;
  cleanup(): Promise<void>;
}

let lsn = 1000n;
/** A batch of `n` upserts over keys 0..keys-1, one transaction, the next LSN. */
export function batchOf(n: number, keys = 10, tag = ''): ChangeBatch {
  lsn += 100n;
  const changes: Change[] = Array.from({ length: n }, (_, seq) => ({
    op: seq < keys ? 'I' : 'U',
    table: 'public.items',
    row: [String(seq % keys), `${tag}${lsn}-${seq}`],
    lsn,
    seq,
    commitTimeUs: 1_700_000_000_000_000n,
  }));
  return { tables: new Map([['public.items', ITEMS]]), changes, ackLsn: lsn + 50n };
}

/** A copy of the items table as the source hands one to the bus: a reset, then row 1 ("copied"), at `copyPoint`. */
export function copyBatch(copyPoint: bigint): ChangeBatch {
  return {
    tables: new Map([['public.items', ITEMS]]),
    changes: [
      { op: 'T', table: 'public.items', row: [], lsn: 0n, seq: 0, commitTimeUs: 1n },
      { op: 'R', table: 'public.items', row: ['1', 'copied'], lsn: 0n, seq: 0, commitTimeUs: 1n },
    ],
    copyPoint,
  };
}

const byKey = (changes: Change[]) => {
  const m = new Map<string, string[]>();
  for (const c of changes) m.set(String(c.row[0]), [...(m.get(String(c.row[0])) ?? []), String(c.row[1])]);
  return m;
};

const settled = async (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true, () => true), Bun.sleep(ms).then(() => false)]);

/** Runs the bus into a fresh recording sink. */
function start(h: BusHarness): { sink: Recorder; stop: AbortController; running: Promise<void> } {
  const sink = new Recorder();
  const stop = new AbortController();
  return { sink, stop, running: h.bus.run(sink, stop.signal) };
}

export function busContract(name: string, make: () => Promise<BusHarness>): void {
  describe(`Bus contract: ${name}`, () => {
    let h: BusHarness | undefined;
    afterEach(async () => {
      await h?.cleanup();
      h = undefined;
    });

    test('per key, changes arrive once each and in publish order', async () => {
      h = await make();
      const { sink, stop, running } = start(h);
      const batches = [batchOf(40), batchOf(25), batchOf(60)];
      await Promise.all(batches.map((b) => h!.bus.publish(b)));
      await sink.waitFor(125);
      await Bun.sleep(200); // nothing more arrives
      expect(sink.changes).toHaveLength(125);
      expect(byKey(sink.changes)).toEqual(byKey(batches.flatMap((b) => b.changes)));
      stop.abort();
      await running;
    });

    test('publish resolves only once the batch is durable downstream', async () => {
      h = await make();
      const { sink, stop, running } = start(h);
      await h.block(sink);
      const batch = batchOf(20, 10, 'durable-');
      const published = h.bus.publish(batch);
      expect(await settled(published, 700)).toBe(false);
      await h.unblock(sink);
      await published;
      const seen = await h.reread(sink, 20);
      expect(byKey(seen.filter((c) => String(c.row[1]).startsWith('durable-')))).toEqual(byKey(batch.changes));
      stop.abort();
      await running;
    });

    test('stops in data-flow order: nothing is applied after run returns, publish after close is refused', async () => {
      h = await make();
      const { sink, stop, running } = start(h);
      await h.bus.publish(batchOf(10));
      await sink.waitFor(10);
      stop.abort();
      await running;
      const applies = sink.applies;
      await h.bus.close();
      await expect(h.bus.publish(batchOf(5))).rejects.toMatchObject({ code: 'BUS_CLOSED' });
      await Bun.sleep(200);
      expect(sink.applies).toBe(applies);
    });

    test('backpressure: with the downstream unavailable nothing resolves; afterwards all do, in order', async () => {
      h = await make();
      const { sink, stop, running } = start(h);
      await h.block(sink);
      const order: number[] = [];
      const pending = [batchOf(10), batchOf(10), batchOf(10)].map((b, i) => h!.bus.publish(b).then(() => order.push(i)));
      expect(await settled(Promise.race(pending), 700)).toBe(false);
      await h.unblock(sink);
      await Promise.all(pending);
      expect(order).toEqual([0, 1, 2]);
      await sink.waitFor(30);
      stop.abort();
      await running;
    });
  });
}
