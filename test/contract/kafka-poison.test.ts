import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Consumer, ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka';
import { createKafkaBus } from '../../src/bus/index.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { batchOf, Recorder } from './bus.case.ts';

let kafka: KafkaMock;
beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3 });
}, 300_000);
afterAll(async () => kafka?.stop());

test('poison messages go to the dead-letter topic with the error in headers; the rest is applied', async () => {
  const prefix = 'poison';
  const topic = `${prefix}.public.items`;
  await kafka.createTopic(topic, 1, 3);
  await kafka.createTopic(`${prefix}-dead-letter`, 1, 3);
  const opts = kafkaOptions(kafka.bootstrap, prefix, { partitions: 1 });
  const bus = createKafkaBus(opts, { loadOffsets: async () => [], log: () => {} });
  const sink = new Recorder();
  const stop = new AbortController();
  const running = bus.run(sink, stop.signal);

  await bus.publish(batchOf(5, 5));
  // Another producer writes garbage between good events.
  const raw = new Producer({ clientId: 'raw', bootstrapBrokers: kafka.bootstrap, serializers: stringSerializers, acks: ProduceAcks.ALL, idempotent: false });
  const good = JSON.parse((await firstValue(kafka, topic))!) as { payload: { after: Record<string, string>; source: Record<string, unknown> } };
  const badValue = structuredClone(good);
  badValue.payload.after.id = 'not-a-number';
  const notEnvelope = { hello: 'world' };
  await raw.send({
    messages: [
      { topic, partition: 0, key: 'x', value: '{not json' },
      { topic, partition: 0, key: 'y', value: JSON.stringify(notEnvelope) },
      { topic, partition: 0, key: 'z', value: JSON.stringify(badValue) },
    ],
  });
  await raw.close();
  await bus.publish(batchOf(5, 5));
  await sink.waitFor(10);

  const status = bus.status!() as { consumer: { deadLetters: number } };
  expect(status.consumer.deadLetters).toBe(3);
  const dead = await readAll(kafka, `${prefix}-dead-letter`);
  expect(dead.map((d) => d.headers.get('ducktail.error.code'))).toEqual(['NOT_JSON', 'NOT_ENVELOPE', 'BAD_VALUE']);
  expect(dead[2]!.headers.get('ducktail.error.message')).toContain('column id (type oid 23) cannot hold "not-a-number"');
  expect(dead.map((d) => d.headers.get('ducktail.source.offset'))).toEqual(['5', '6', '7']);
  expect(dead[0]!.value).toBe('{not json');
  expect(sink.changes).toHaveLength(10);
  stop.abort();
  await running;
  await bus.close();
}, 60_000);

async function readAll(kafka: KafkaMock, topic: string) {
  const consumer = new Consumer({ groupId: 'unused', clientId: 'reader', bootstrapBrokers: kafka.bootstrap });
  try {
    const md = await consumer.metadata({ topics: [topic], forceUpdate: true });
    const t = md.topics.get(topic)!;
    const out: { value: string; headers: Map<string, string> }[] = [];
    let offset = 0n;
    for (;;) {
      const res = await consumer.fetch({
        node: t.partitions[0]!.leader,
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [{ topicId: t.id, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
      });
      const part = res.responses[0]!.partitions[0]!;
      for (const b of part.records ?? []) {
        for (const r of b.records) {
          if (b.firstOffset + BigInt(r.offsetDelta) < offset) continue;
          offset = b.firstOffset + BigInt(r.offsetDelta) + 1n;
          out.push({ value: String(r.value), headers: new Map(r.headers.map(([k, v]) => [String(k), String(v)])) });
        }
      }
      if (offset >= part.highWatermark) break;
    }
    return out;
  } finally {
    await consumer.close(true);
  }
}

async function firstValue(kafka: KafkaMock, topic: string): Promise<string | undefined> {
  return (await readAll(kafka, topic))[0]?.value;
}
