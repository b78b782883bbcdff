import { afterAll } from 'bun:test';
import { createKafkaBus } from '../../src/bus/index.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { busContract, Recorder } from './bus.case.ts';

let mock: Promise<KafkaMock> | undefined;
afterAll(async () => (await mock)?.stop());
let n = 0;

/**
 * The non-idempotent producer (producer id -1) with either event schema, and the idempotent one (producer id and sequences),
 * each with the producer in its Worker (the default); the last one keeps it on the main thread.
 */
const variants = [
  { eventSchema: 'embedded', idempotent: false, producerWorker: true },
  { eventSchema: 'topic', idempotent: false, producerWorker: true },
  { eventSchema: 'embedded', idempotent: true, producerWorker: true },
  { eventSchema: 'topic', idempotent: false, producerWorker: false },
] as const;

for (const { eventSchema, idempotent, producerWorker } of variants) {
  busContract(`kafka (librdkafka mock, 3 brokers, schema ${eventSchema}${idempotent ? ', idempotent' : ''}, producer ${producerWorker ? 'in its Worker' : 'on the main thread'})`, async () => {
    mock ??= startKafkaMock({ brokers: 3 });
    const kafka = await mock;
    const prefix = `contract${n++}x${Date.now()}`;
    await kafka.createTopic(`${prefix}.public.items`, 3, 3);
    const opts = kafkaOptions(kafka.bootstrap, prefix, { eventSchema, idempotent, producerWorker });
    const log = () => {};
    const bus = createKafkaBus(opts, { loadOffsets: async () => [], log });
    return {
      bus,
      block: () => kafka.brokerDown(-1),
      unblock: () => kafka.brokerUp(-1),
      async reread(_sink, count) {
        const fresh = createKafkaBus(opts, { loadOffsets: async () => [], log });
        const sink = new Recorder();
        const stop = new AbortController();
        const running = fresh.run(sink, stop.signal);
        try {
          await sink.waitFor(count);
        } finally {
          stop.abort();
          await running;
          await fresh.close();
        }
        return sink.changes;
      },
      async cleanup() {
        await kafka.brokerUp(-1);
        await bus.close();
      },
    };
  });
}
