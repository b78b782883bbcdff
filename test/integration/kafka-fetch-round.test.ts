import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { Bus } from '../../src/bus/index.ts';
import { createKafkaBus } from '../../src/bus/index.ts';
import type { BatchSink, ChangeBatch } from '../../src/change/index.ts';
import { batchOf } from '../contract/bus.case.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';

// The consumer fetches the next records while DuckDB applies a batch (one fetch, sent as the apply starts).
// What the brokers acknowledge after that fetch was sent must go into the very next batch: the round that
// chooses it fetches first whenever its buffers hold less than a batch. Before, it fetched only when the
// last fetch had answered over 25 ms before, so after a short apply it chose from what the overlapping
// fetch had brought and left the rest a whole apply behind (40% of the transactions at 5,000 changes/s
// in bench/kafka.ts, docs/PERFORMANCE.md "Kafka latency").

let kafka: KafkaMock;
const buses: Bus[] = [];
const stop = new AbortController();

beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3 });
}, 300_000);

afterAll(async () => {
  stop.abort();
  for (const b of buses) await b.close().catch(() => {});
  await kafka?.stop();
});

test('changes acknowledged while a batch is applied are in the next batch, not the one after', async () => {
  const prefix = 'round';
  await kafka.createTopic(`${prefix}.public.items`, 1, 3);
  const writer = createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { maxLag: 0, lingerMs: 0 }), { loadOffsets: async () => [], log: () => {} });
  buses.push(writer);
  await writer.publish(batchOf(15, 15, 'early-'));
  const late = batchOf(3, 3, 'late-');

  const batches: ChangeBatch[] = [];
  const sink: BatchSink = {
    async apply(batch: ChangeBatch) {
      batches.push(batch);
      if (batches.length !== 1) return;
      // The fetch overlapping this apply has been answered by now; these arrive after it (acknowledged by
      // every replica when publish resolves), and the apply ends well within 25 ms of them.
      await Bun.sleep(10);
      await writer.publish(late);
    },
  };
  // Batches of 10: the first takes 10 of the 15, the next round starts with 5 buffered.
  const reader = createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { batchRows: 10 }), { loadOffsets: async () => [], log: () => {} });
  buses.push(reader);
  void reader.run(sink, stop.signal);
  const applied = () => batches.reduce((n, b) => n + b.changes.length, 0);
  const until = Date.now() + 60_000;
  while (applied() < 18 && Date.now() < until) await Bun.sleep(10);
  expect(applied()).toBe(18);

  const tags = batches.map((b) => b.changes.map((c) => String(c.row[1]).split('-')[0]));
  console.log(`batches: ${tags.map((t) => `[${t.join(',')}]`).join(' ')}`);
  expect(tags[0]).toEqual(Array(10).fill('early'));
  // Before: [early x5] then [late x3] in a third batch.
  expect(tags[1]).toEqual([...Array(5).fill('early'), ...Array(3).fill('late')]);
  expect(batches.length).toBe(2);
}, 120_000);
