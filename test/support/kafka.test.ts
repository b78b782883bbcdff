import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import {
  compatibilityPartitioner,
  Consumer,
  ProduceAcks,
  Producer,
  stringSerializers,
} from '@platformatic/kafka';
import { KAFKA_API_KEY, KAFKA_ERROR, startKafkaMock, type KafkaMock } from './kafka.ts';

const BUILD_TIMEOUT_MS = 300_000; // first run on a fresh clone builds librdkafka (about a minute)

interface Fetched {
  offset: bigint;
  key: string | undefined;
  value: string | undefined;
}

/** Reads one partition from `from` to its high watermark without a consumer group (explicit assignment). */
async function fetchPartition(consumer: Consumer, topic: string, partition: number, from = 0n): Promise<Fetched[]> {
  const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
  const topicMetadata = metadata.topics.get(topic);
  const leader = topicMetadata?.partitions[partition]?.leader;
  if (topicMetadata === undefined || leader === undefined) throw new Error(`no metadata for ${topic}[${partition}]`);

  const out: Fetched[] = [];
  let offset = from;
  for (;;) {
    const response = await consumer.fetch({
      node: leader,
      maxWaitTime: 100,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [
        {
          topicId: topicMetadata.id,
          partitions: [
            { partition, fetchOffset: offset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 },
          ],
        },
      ],
    });
    const data = response.responses[0]?.partitions[0];
    if (data === undefined) throw new Error(`empty fetch response for ${topic}[${partition}]`);
    expect(data.errorCode).toBe(0);
    for (const batch of data.records ?? []) {
      for (const record of batch.records) {
        const recordOffset = batch.firstOffset + BigInt(record.offsetDelta);
        if (recordOffset < offset) continue;
        out.push({ offset: recordOffset, key: record.key?.toString(), value: record.value?.toString() });
        offset = recordOffset + 1n;
      }
    }
    if (offset >= data.highWatermark) return out;
  }
}

function keyPartition(key: string, partitions: number): number {
  return compatibilityPartitioner({ topic: '' }, Buffer.from(key)) % partitions;
}

describe('kafka mock (librdkafka 2.15.1)', () => {
  let kafka: KafkaMock;
  let producer: Producer<string, string, string, string>;
  let consumer: Consumer;

  beforeAll(async () => {
    kafka = await startKafkaMock({ brokers: 3 });
    producer = new Producer({
      clientId: 'kafka-smoke-producer',
      bootstrapBrokers: kafka.bootstrap,
      serializers: stringSerializers,
      acks: ProduceAcks.ALL,
      idempotent: false, // the mock answers UNKNOWN_PRODUCER_ID
      partitioner: compatibilityPartitioner,
      autocreateTopics: false,
      retries: 2,
      retryDelay: 50,
      timeout: 2_000,
    });
    consumer = new Consumer({
      groupId: 'unused', // required by the constructor; no group request is sent
      clientId: 'kafka-smoke-consumer',
      bootstrapBrokers: kafka.bootstrap,
      retries: 2,
      retryDelay: 50,
      timeout: 2_000,
    });
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await producer?.close(true);
    await consumer?.close(true);
    await kafka?.stop();
  });

  test('prints a bootstrap address per broker', () => {
    expect(kafka.bootstrap).toHaveLength(3);
    for (const address of kafka.bootstrap) expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test('produce with acks=all, fetch back by explicit partition', async () => {
    const topic = `smoke-roundtrip-${Date.now()}`;
    await kafka.createTopic(topic, 3, 3);
    const sent = Array.from({ length: 30 }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}` }));
    const result = await producer.send({ messages: sent });
    expect(result.offsets?.length).toBeGreaterThan(0);

    const received: Fetched[] = [];
    for (let partition = 0; partition < 3; partition++) {
      const records = await fetchPartition(consumer, topic, partition);
      // Keys land where the Java client would put them; offsets within a partition are dense.
      for (const [i, record] of records.entries()) {
        expect(keyPartition(record.key!, 3)).toBe(partition);
        expect(record.offset).toBe(BigInt(i));
      }
      received.push(...records);
    }
    const pairs = (list: { key?: string; value?: string }[]) => list.map((m) => `${m.key}=${m.value}`).sort();
    expect(pairs(received)).toEqual(pairs(sent));
  });

  test('pushed produce errors are retried by the client', async () => {
    const topic = `smoke-retry-${Date.now()}`;
    await kafka.createTopic(topic, 1, 3);
    await kafka.pushErrors(KAFKA_API_KEY.Produce, [KAFKA_ERROR.NOT_ENOUGH_REPLICAS]);
    await producer.send({ messages: [{ topic, key: 'a', value: 'after-one-error' }] });
    expect(await fetchPartition(consumer, topic, 0)).toEqual([{ offset: 0n, key: 'a', value: 'after-one-error' }]);

    // More failures than the client retries: send rejects, nothing is written.
    await kafka.pushErrors(KAFKA_API_KEY.Produce, Array(5).fill(KAFKA_ERROR.NOT_ENOUGH_REPLICAS));
    await expect(producer.send({ messages: [{ topic, key: 'b', value: 'lost' }] })).rejects.toThrow();
    await kafka.clearErrors(KAFKA_API_KEY.Produce);
    expect(await fetchPartition(consumer, topic, 0)).toHaveLength(1);
  });

  test('a downed leader fails its partition only; it serves again once up', async () => {
    const topic = `smoke-down-${Date.now()}`;
    await kafka.createTopic(topic, 2, 3);
    await kafka.setLeader(topic, 0, 1);
    await kafka.setLeader(topic, 1, 2);
    await producer.send({ messages: [{ topic, partition: 0, key: 'p0', value: 'before' }] });

    await kafka.brokerDown(1);
    try {
      await producer.send({ messages: [{ topic, partition: 1, key: 'p1', value: 'while-1-down' }] });
      await expect(producer.send({ messages: [{ topic, partition: 0, key: 'p0', value: 'lost' }] })).rejects.toThrow();
    } finally {
      await kafka.brokerUp(1);
    }

    await producer.send({ messages: [{ topic, partition: 0, key: 'p0', value: 'after' }] });
    expect((await fetchPartition(consumer, topic, 0)).map((m) => m.value)).toEqual(['before', 'after']);
    expect((await fetchPartition(consumer, topic, 1)).map((m) => m.value)).toEqual(['while-1-down']);
  });

  test('commands are validated and answered', async () => {
    await expect(kafka.createTopic('has space', 1)).rejects.toThrow(/one word/);
    const topic = `smoke-dup-${Date.now()}`;
    await kafka.createTopic(topic, 1);
    await expect(kafka.createTopic(topic, 1)).rejects.toThrow(/TOPIC_ALREADY_EXISTS/);
    await expect(kafka.pushErrors(KAFKA_API_KEY.Produce, ['NO_SUCH_ERROR'])).rejects.toThrow(/unknown error code/);
  });
});
