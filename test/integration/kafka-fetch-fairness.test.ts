import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { Bus } from '../../src/bus/index.ts';
import { createKafkaBus } from '../../src/bus/index.ts';
import type { BatchSink, ChangeBatch } from '../../src/change/index.ts';
import { batchOf } from '../contract/bus.case.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';

// A partition that always comes late in a fetch request must still be served while the partitions
// before it have data. librdkafka's mock (2.15.1, rd_kafka_mock_handle_Fetch) counts a flexible-version
// response's bytes wrongly: it adds rd_kafka_buf_write_kbytes()'s return value, the *position* of the
// record set in the response plus its length, so after k record sets of S bytes it believes it wrote
// S * k(k+1)/2 and leaves every later partition empty (no error) once that passes the request's
// max_bytes (8 MB). A real broker stops at max_bytes too (KIP-74), which is why consumers rotate the
// order. Before the consumer rotated, the 1M-row benchmark with payload-only uncompressed events lost
// the fifth partition led by one broker (~0.9 MB record sets: 0.9 * 10 > 8 MB) to the mock's retention:
// it got nothing while the four before it always had data (docs/KAFKA.md, docs/PERFORMANCE.md).

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

const PARTITIONS = 12;
const BATCHES = 6;
const ROWS = 1_200; // ~100 per partition and batch: one record set of ~0.25 MB per partition and publish

test('every partition led by one broker is served while the ones before it in the request still have data', async () => {
  const prefix = 'fair';
  const topic = `${prefix}.public.items`;
  await kafka.createTopic(topic, PARTITIONS, 3);
  for (let p = 0; p < PARTITIONS; p++) await kafka.setLeader(topic, p, 1);
  // The backlog first (no consumer running): six publishes, each one record set per partition.
  const writer = createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { maxLag: 0, lingerMs: 0 }), { loadOffsets: async () => [], log: () => {} });
  buses.push(writer);
  const wide = 'x'.repeat(2_000);
  for (let i = 0; i < BATCHES; i++) {
    const b = batchOf(ROWS, ROWS);
    await writer.publish({ ...b, changes: b.changes.map((c) => ({ ...c, row: [c.row[0]!, `${String(c.row[1])}${wide}`] })) });
  }
  const total = BATCHES * ROWS;

  // Then one reader whose batches (1,000 changes) never make a partition's buffer full enough to leave it
  // out of a fetch: each fetch asks the broker for all twelve.
  let applied = 0;
  const firstAt = new Map<number, number>(); // partition -> changes applied before the batch that first moved it
  const sink: BatchSink = {
    async apply(batch: ChangeBatch) {
      for (const o of batch.offsets ?? []) if (!firstAt.has(o.partition)) firstAt.set(o.partition, applied);
      applied += batch.changes.length;
    },
  };
  const reader = createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { batchRows: 1_000 }), { loadOffsets: async () => [], log: () => {} });
  buses.push(reader);
  void reader.run(sink, stop.signal);
  const until = Date.now() + 60_000;
  while (applied < total && Date.now() < until) await Bun.sleep(20);
  expect(applied).toBe(total);

  const late = [...firstAt].filter(([, at]) => at > total / 3).map(([p, at]) => `partition ${p} first applied after ${at} of ${total} changes`);
  console.log(`first batch applied per partition (changes applied before it): ${[...firstAt].sort((a, b) => a[0] - b[0]).map(([p, at]) => `${p}:${at}`).join(' ')}`);
  // Before the fix: partitions 9-11 got nothing until 0-8 were drained (after ~5,400 of 7,200 changes).
  expect(late).toEqual([]);
  expect(firstAt.size).toBe(PARTITIONS);
}, 120_000);
