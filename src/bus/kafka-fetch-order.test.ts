import { expect, test } from 'bun:test';
import { FetchOrder, gotRecordsLast, STARVED_LOG_AFTER_MS } from './kafka-fetch-order.ts';

const parts = () => [0, 1, 2, 3, 4, 5].map((p) => ({ p }));

test('partitions that brought records go to the back; the ones a broker left out come first next time', () => {
  const order = new FetchOrder<{ p: number }>();
  const all = parts();
  let req = order.order(all);
  expect(req.map((x) => x.p)).toEqual([0, 1, 2, 3, 4, 5]);
  // A broker that answers only the first four (librdkafka's mock at ~0.9 MB per partition and 8 MB).
  for (let round = 0; round < 6; round++) {
    for (const [i, x] of req.entries()) order.answered(x, i < 4 ? 100 : 0, true, 0);
    const next = order.order(all);
    expect(next.slice(0, 2)).toEqual(req.slice(4)); // the two left out lead the next request
    req = next;
  }
});

test('plan partitions that got records last in the next extra fetch, ties in their order', () => {
  const plan = [0, 1, 2, 3].map((partition) => ({ topicId: 't', partition }));
  expect(gotRecordsLast(plan, new Set(['t/0', 't/2'])).map((p) => p.partition)).toEqual([1, 3, 0, 2]);
});

test('a partition answered empty while the broker holds more is reported once after STARVED_LOG_AFTER_MS', () => {
  const order = new FetchOrder<{ p: number }>();
  const x = { p: 5 };
  expect(order.answered(x, 0, true, 1_000)).toBeUndefined();
  expect(order.answered(x, 0, true, 1_000 + STARVED_LOG_AFTER_MS - 1)).toBeUndefined();
  expect(order.answered(x, 0, true, 1_000 + STARVED_LOG_AFTER_MS)).toBe(STARVED_LOG_AFTER_MS);
  expect(order.answered(x, 0, true, 1_000 + 2 * STARVED_LOG_AFTER_MS)).toBeUndefined(); // once an episode
  order.answered(x, 10, true, 30_000); // served: the episode ends
  expect(order.answered(x, 0, true, 31_000)).toBeUndefined();
  expect(order.answered(x, 0, false, 50_000)).toBeUndefined(); // caught up: not starved
  expect(order.answered(x, 0, true, 50_001)).toBeUndefined();
  expect(order.answered(x, 0, true, 50_001 + STARVED_LOG_AFTER_MS)).toBe(STARVED_LOG_AFTER_MS);
});
