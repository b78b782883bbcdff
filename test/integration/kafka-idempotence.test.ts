/**
 * "Idempotent where the broker allows it" against the librdkafka mock: brokers answering InitProducerId
 * with CLUSTER_AUTHORIZATION_FAILED (no IdempotentWrite) get the events anyway, without idempotence
 * (producer id -1), and the log says so; both our record batches and the client's sends (the schema topic).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { createKafkaBus } from '../../src/bus/index.ts';
import { batchOf, Recorder } from '../contract/bus.case.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { KAFKA_API_KEY, type KafkaMock, startKafkaMock } from '../support/kafka.ts';

const CLUSTER_AUTHORIZATION_FAILED = 31;
let kafka: KafkaMock;

beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3 });
}, 300_000);

afterAll(async () => {
  await kafka?.stop();
});

for (const producerWorker of [true, false]) {
  test(`brokers refusing an idempotent producer: the events go out without idempotence, logged (producer ${producerWorker ? 'in its Worker' : 'on the main thread'})`, async () => {
    const prefix = `refuseidem${producerWorker ? 'w' : 'm'}`;
    await kafka.createTopic(`${prefix}.public.items`, 3, 3);
    await kafka.createTopic(`${prefix}-schemas`, 1, 3);
    // Every InitProducerId (ours, and the client's for the schema topic, with its retries) refused: 1,000 of them
    // (50 a command), more than a producer retrying them would get through in the test's time.
    for (let i = 0; i < 20; i++) await kafka.pushErrors(KAFKA_API_KEY.InitProducerId, Array(50).fill(CLUSTER_AUTHORIZATION_FAILED));
    const logs: string[] = [];
    const bus = createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { idempotent: true, eventSchema: 'topic', producerWorker }), {
      loadOffsets: async () => [],
      log: (m) => logs.push(m),
    });
    const sink = new Recorder();
    const stop = new AbortController();
    const run = bus.run(sink, stop.signal);
    try {
      await bus.publish(batchOf(300, 20));
      await bus.publish(batchOf(300, 20));
      await sink.waitFor(600, 60_000);
      expect(sink.changes.length).toBe(600);
      const refused = logs.filter((m) => m.includes('refuse an idempotent producer') && m.includes('CLUSTER_AUTHORIZATION_FAILED'));
      expect(refused.length).toBeGreaterThanOrEqual(1);
    } finally {
      stop.abort();
      await run.catch(() => {});
      await bus.close();
      await kafka.clearErrors(KAFKA_API_KEY.InitProducerId);
    }
  }, 120_000);
}
