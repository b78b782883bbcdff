import type { Consumer } from '@platformatic/kafka';
import { registerLayout } from './kafka-decode.ts';

/**
 * The schema topic (`<prefix>-schemas`, one partition, compacted): with `eventSchema = "topic"` each
 * table layout's schema block is published there once (key = layout id) before the first event that
 * names it in `source.layout`, acknowledged by every replica first, so a consumer that can read an
 * event can always find its layout. Read on demand, from where the last read ended, by the thread that
 * decodes (the main thread, or the fetch Worker).
 */

/** Per schema topic (this thread): the next offset to read, and the read under way. */
const nextOffsets = new Map<string, bigint>();
const reading = new Map<string, Promise<void>>();

type RecordBatch = { firstOffset: bigint; records: { offsetDelta: number; key?: Buffer | null; value?: Buffer | null }[] };

/** Reads the schema topic up to its end and registers every layout on it (one read at a time). */
export function readLayouts(consumer: Consumer, topic: string): Promise<void> {
  let r = reading.get(topic);
  if (!r) {
    r = readAll(consumer, topic).finally(() => reading.delete(topic));
    reading.set(topic, r);
  }
  return r;
}

async function readAll(consumer: Consumer, topic: string): Promise<void> {
  const md = await consumer.metadata({ topics: [topic], forceUpdate: true }).catch((e: unknown) => {
    if (/unknown topic|UNKNOWN_TOPIC/i.test(String((e as Error)?.message ?? e))) return undefined;
    throw e;
  });
  const t = md?.topics.get(topic);
  const leader = t?.partitions[0]?.leader;
  if (!t || leader === undefined || leader < 0) return; // no schema topic: the events naming a layout are poison
  let nextOffset = nextOffsets.get(topic) ?? 0n;
  for (let round = 0; round < 1000; round++) {
    const res = await consumer.fetch({
      node: leader,
      maxWaitTime: 0,
      minBytes: 1,
      maxBytes: 8 << 20,
      topics: [{ topicId: t.id, partitions: [{ partition: 0, fetchOffset: nextOffset, partitionMaxBytes: 4 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
    });
    const pr = res.responses[0]?.partitions[0];
    if (!pr) return;
    if (pr.errorCode !== 0) throw new Error(`fetch ${topic}[0] at ${nextOffset} failed with Kafka error ${pr.errorCode}`);
    let got = 0;
    for (const b of (pr.records ?? []) as RecordBatch[]) {
      for (const r of b.records) {
        const offset = b.firstOffset + BigInt(r.offsetDelta);
        if (offset < nextOffset) continue;
        if (r.key && r.value) registerLayout(r.key.toString(), r.value.toString());
        nextOffset = offset + 1n;
        nextOffsets.set(topic, nextOffset);
        got++;
      }
    }
    if (got === 0 || nextOffset >= pr.highWatermark) return;
  }
}
