import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Consumer } from '@platformatic/kafka';
import type { ChangeBatch, TableSchema } from '../../src/change/index.ts';
import { ProducerThread } from '../../src/bus/kafka-producer-thread.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';

// The producer's Worker (src/bus/kafka-producer-thread.ts) against the librdkafka mock: what it sends
// is on the brokers when `write` resolves, its status and partition ends come back to this thread, and a
// Worker that cannot start leaves the writes to this thread's producer instead of stalling them.

let kafka: KafkaMock;
const items: TableSchema = {
  schema: 'public',
  table: 'items',
  columns: [
    { key: true, name: 'id', typeOid: 23, typeMod: -1 },
    { key: false, name: 'note', typeOid: 25, typeMod: -1 },
  ],
};

function batch(from: number, count: number): ChangeBatch {
  const changes = Array.from({ length: count }, (_, i) => ({
    op: 'I' as const, table: 'public.items', row: [String(from + i), `note ${from + i}`], lsn: BigInt(1000 + from), seq: i, commitTimeUs: 1_764_057_600_000_000n, xid: 7,
  }));
  return { tables: new Map([['public.items', items]]), changes, ackLsn: BigInt(1001 + from) };
}

/** Messages on the topic's partitions, read with the client's own consumer. */
async function onBrokers(topic: string): Promise<number> {
  const consumer = new Consumer({ bootstrapBrokers: kafka.bootstrap, groupId: 'check', clientId: 'check' });
  try {
    const md = await consumer.metadata({ topics: [topic], forceUpdate: true });
    const offsets = await consumer.listOffsets({ topics: [topic] });
    const ends = offsets.get(topic) ?? [];
    return md.topics.get(topic) ? ends.reduce((a, b) => a + Number(b), 0) : 0;
  } finally {
    await consumer.close(true);
  }
}

beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3 });
}, 300_000);

afterAll(async () => {
  await kafka?.stop();
});

test('writes through the Worker are on the brokers when they resolve; status and partition ends come back', async () => {
  const prefix = `pt${Date.now()}`;
  await kafka.createTopic(`${prefix}.public.items`, 3, 3);
  const logs: string[] = [];
  const writer = new ProducerThread(kafkaOptions(kafka.bootstrap, prefix), (m) => logs.push(m));
  const stop = new AbortController();
  try {
    expect(writer.thread).toBe('worker');
    const first = batch(0, 2_000);
    const second = batch(2_000, 1_000);
    const encoded = await writer.encodeAhead(first);
    await writer.write(first, stop.signal, encoded);
    await writer.write(second, stop.signal); // not encoded ahead
    expect(writer.status.published).toBe(2);
    expect(writer.status.messages).toBe(3_000);
    expect(writer.status.error).toBeNull();
    expect([...writer.ends.values()].reduce((a, b) => a + b, 0n)).toBe(3_000n);
    expect(await onBrokers(`${prefix}.public.items`)).toBe(3_000);
    expect(writer.thread).toBe('worker');
    expect(logs.filter((l) => l.includes('worker failed'))).toEqual([]);
  } finally {
    stop.abort();
    await writer.close();
  }
}, 120_000);

test('a Worker that cannot start: the writes go on with a producer on this thread', async () => {
  const prefix = `ptf${Date.now()}`;
  await kafka.createTopic(`${prefix}.public.items`, 3, 3);
  const logs: string[] = [];
  const writer = new ProducerThread(kafkaOptions(kafka.bootstrap, prefix), (m) => logs.push(m), new URL('./no-such-worker.ts', import.meta.url).href);
  const stop = new AbortController();
  try {
    const b = batch(0, 500);
    await writer.write(b, stop.signal, await writer.encodeAhead(b));
    expect(writer.thread).toBe('main');
    expect(logs.some((l) => l.includes('producer worker failed'))).toBe(true);
    expect(writer.status.messages).toBe(500);
    expect(await onBrokers(`${prefix}.public.items`)).toBe(500);
  } finally {
    stop.abort();
    await writer.close();
  }
}, 120_000);
