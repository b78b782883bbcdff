import { expect, test } from 'bun:test';
import { BATCH_OVERHEAD, brokerTooLarge, messageBytes, RECORD_OVERHEAD, type Sized, sendPlan } from './kafka-split.ts';

const msg = (partition: number, bytes: number, topic = 't'): Sized => ({ topic, partition, key: 'k', value: Buffer.alloc(bytes - 1 - RECORD_OVERHEAD) });

/** Per send, per topic/partition: the bytes its record batch gets. */
function batches(messages: Sized[], ends: number[]): number[] {
  const out: number[] = [];
  let from = 0;
  for (const end of ends) {
    const per = new Map<string, number>();
    for (const m of messages.slice(from, end)) per.set(`${m.topic}/${m.partition}`, (per.get(`${m.topic}/${m.partition}`) ?? BATCH_OVERHEAD) + messageBytes(m));
    out.push(...per.values());
    from = end;
  }
  return out;
}

test('a batch within the limit is one send', () => {
  const messages = [msg(0, 100), msg(1, 100), msg(0, 100)];
  expect(sendPlan(messages, 1000)).toEqual([3]);
  expect(sendPlan([], 1000)).toEqual([]);
});

test('consecutive sends, no partition over the limit in any, every message once and in order', () => {
  const messages: Sized[] = [];
  for (let i = 0; i < 1000; i++) messages.push(msg(i % 3, 50 + ((i * 37) % 400), i % 5 === 0 ? 'u' : 't'));
  const ends = sendPlan(messages, 4096);
  expect(ends.length).toBeGreaterThan(10);
  expect(ends.at(-1)).toBe(messages.length);
  expect([...ends].sort((a, b) => a - b)).toEqual(ends); // contiguous ranges, in order
  expect(new Set(ends).size).toBe(ends.length);
  expect(Math.max(...batches(messages, ends))).toBeLessThanOrEqual(4096);
  // Full sends: the next message would have taken some partition over.
  expect(batches(messages, ends).filter((b) => b > 4096 - 500).length).toBeGreaterThan(ends.length / 2);
});

test('a retry resumes after the acknowledged sends', () => {
  const messages = Array.from({ length: 30 }, (_, i) => msg(0, 100 + i));
  const all = sendPlan(messages, 1000);
  const rest = sendPlan(messages, 1000, all[1]);
  expect(rest.at(-1)).toBe(30);
  expect(rest[0]).toBeGreaterThan(all[1]!);
});

test('one message over the limit: KAFKA_MESSAGE_TOO_LARGE naming table, key, size and both settings', () => {
  const messages = [msg(0, 100, 'pre.public.docs'), { topic: 'pre.public.docs', partition: 1, key: '{"id":"7"}', value: Buffer.alloc(5000) }];
  expect(() => sendPlan(messages, 4096)).toThrow(/public\.docs.*\{"id":"7"\}.*5092-byte.*bus\.max_batch_bytes = 4096.*message\.max\.bytes.*max\.message\.bytes/);
  try {
    sendPlan(messages, 4096);
  } catch (e) {
    expect((e as { code: string }).code).toBe('KAFKA_MESSAGE_TOO_LARGE');
  }
});

test("the broker's MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE are found in the client's nested errors", () => {
  const nested = (apiId: string, apiCode: number) => ({ message: 'Received response with error', errors: [{ message: 'x', cause: { apiId, apiCode } }] });
  expect(brokerTooLarge(nested('MESSAGE_TOO_LARGE', 10))).toBe('MESSAGE_TOO_LARGE');
  expect(brokerTooLarge(nested('RECORD_LIST_TOO_LARGE', 18))).toBe('RECORD_LIST_TOO_LARGE');
  expect(brokerTooLarge(nested('NOT_LEADER_OR_FOLLOWER', 6))).toBeUndefined();
  expect(brokerTooLarge(new Error('socket closed'))).toBeUndefined();
});
