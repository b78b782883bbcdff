import { expect, test } from 'bun:test';
import { crc32c, createRecordsBatch, Reader, readRecordsBatch } from '@platformatic/kafka';
import { readBatches } from './kafka-fetch-parse.ts';
import { type Compression, nextSequence, type RawMessage, recordBatch, stampBatch } from './kafka-record-batch.ts';

const messages: RawMessage[] = [
  { topic: 't', partition: 0, key: '{"id":"1"}', value: Buffer.from('{"op":"c"}') },
  { topic: 't', partition: 0, key: undefined, value: Buffer.from('truncate') },
  { topic: 't', partition: 0, key: '{"id":"é€😀"}', value: Buffer.alloc(0) },
  { topic: 't', partition: 0, key: 'k'.repeat(200), value: Buffer.alloc(70_000, 0x61) },
];

for (const compression of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as Compression[]) {
  test(`a record batch written here reads back through the client's parser (${compression})`, async () => {
    const ts = 1_765_000_000_000n;
    const batch = await recordBatch(messages, [0, 1, 2, 3], compression, ts);
    const b = readRecordsBatch(Reader.from(batch));
    expect(b.magic).toBe(2);
    expect(b.length).toBe(batch.length - 12);
    expect(b.crc).toBe(crc32c(batch.subarray(21)));
    expect(b.lastOffsetDelta).toBe(3);
    expect(b.firstTimestamp).toBe(ts);
    expect(b.producerId).toBe(-1n);
    expect(b.producerEpoch).toBe(-1);
    expect(b.firstSequence).toBe(-1);
    expect(b.records.map((r) => r.offsetDelta)).toEqual([0, 1, 2, 3]);
    expect(b.records.map((r) => r.key?.toString() ?? null)).toEqual(messages.map((m) => (m.key as string | undefined) ?? null));
    expect(b.records.map((r) => Buffer.from(r.value ?? []).toString())).toEqual(messages.map((m) => m.value.toString()));
    expect(b.records.every((r) => r.headers.length === 0 && r.timestampDelta === 0n)).toBe(true);
    // The consumer's own reader (kafka-fetch-parse.ts) reads the same records, also from a section of several batches.
    const section = Buffer.concat([batch, batch]);
    const ours = readBatches(section);
    expect(ours.length).toBe(2);
    for (const o of ours) {
      expect(o.firstOffset).toBe(b.firstOffset);
      expect(o.records.map((r) => [r.offsetDelta, r.key, r.value])).toEqual(b.records.map((r) => [r.offsetDelta, r.key, r.value]));
    }
    // A batch cut at the fetch's byte limit is left out, as the client leaves it out.
    expect(readBatches(section.subarray(0, section.length - 1)).length).toBe(1);
  });
}

test('uncompressed, the records are byte for byte what the client writes', async () => {
  const ts = 1_765_000_000_000n;
  const ours = await recordBatch(messages, [0, 1, 2, 3], 'none', ts);
  const theirs = createRecordsBatch(
    messages.map((m) => ({ ...m, key: m.key === undefined ? undefined : Buffer.from(m.key), timestamp: ts, headers: new Map() })) as never,
    {},
  ).buffer;
  // Same records; the header differs only where the client writes 0 for "none" (leader epoch, producer epoch, base sequence) and Java writes -1.
  expect(ours.subarray(61)).toEqual(theirs.subarray(61));
  expect(ours.length).toBe(theirs.length);
});

test("keys given as their UTF-8 bytes (the encoder's) make the same batch as keys given as text", async () => {
  const ts = 1_765_000_000_000n;
  const asBytes = messages.map((m) => ({ ...m, key: typeof m.key === 'string' ? new Uint8Array(Buffer.from(`xx${m.key}`)).subarray(2) : m.key }));
  expect(await recordBatch(asBytes, [0, 1, 2, 3], 'none', ts)).toEqual(await recordBatch(messages, [0, 1, 2, 3], 'none', ts));
});

test("the consumer's record reader against the client's: headers, null keys and values, negative timestamp deltas, many records", () => {
  const many = Array.from({ length: 300 }, (_, i) => ({
    key: i % 7 === 0 ? undefined : Buffer.from(`k${i}`),
    value: i % 11 === 0 ? undefined : Buffer.from('v'.repeat(i * 3)),
    headers: new Map(i % 5 === 0 ? [[Buffer.from('h'), Buffer.from(`x${i}`)], [Buffer.from('ducktail.error.code'), Buffer.from('BAD_VALUE')]] : []),
    timestamp: 1_765_000_000_000n - BigInt(i * 1000),
    topic: 't', partition: 0,
  }));
  for (const compression of ['none', 'gzip', 'lz4'] as const) {
    const batch = createRecordsBatch(many as never, { compression }).buffer;
    const theirs = readRecordsBatch(Reader.from(batch));
    const [ours] = readBatches(batch);
    expect(ours!.records.map((r) => [r.offsetDelta, r.key, r.value])).toEqual(theirs.records.map((r) => [r.offsetDelta, r.key, r.value]));
  }
});

for (const compression of ['none', 'gzip', 'zstd'] as Compression[]) {
  test(`an idempotent batch carries its producer id, epoch and base sequence, CRC over them (${compression})`, async () => {
    const ts = 1_765_000_000_000n;
    const stamp = { producerId: 0x1234_5678_9abcn, epoch: 7, baseSequence: 2_147_483_646 };
    const batch = await recordBatch(messages, [0, 1, 2, 3], compression, ts, undefined, stamp);
    const b = readRecordsBatch(Reader.from(batch));
    expect([b.producerId, b.producerEpoch, b.firstSequence]).toEqual([stamp.producerId, 7, 2_147_483_646]);
    expect(b.crc).toBe(crc32c(batch.subarray(21)));
    expect(b.records.map((r) => Buffer.from(r.value ?? []).toString())).toEqual(messages.map((m) => m.value.toString()));
    // Stamped again (a new producer id after the brokers lost ours): the fields and the CRC change, the records do not.
    const again = stampBatch(Buffer.from(batch), { producerId: 99n, epoch: 0, baseSequence: 0 });
    const c = readRecordsBatch(Reader.from(again));
    expect([c.producerId, c.producerEpoch, c.firstSequence]).toEqual([99n, 0, 0]);
    expect(c.crc).toBe(crc32c(again.subarray(21)));
    expect(c.crc).not.toBe(b.crc);
    expect(again.subarray(61)).toEqual(batch.subarray(61));
    // The same stamp written by recordBatch and by stampBatch: the same bytes.
    expect(stampBatch(Buffer.from(again), stamp)).toEqual(batch);
  });
}

test('sequences wrap past 2^31 - 1 to 0 as Kafka\'s Java client wraps them', () => {
  expect(nextSequence(0, 5)).toBe(5);
  expect(nextSequence(2_147_483_640, 7)).toBe(2_147_483_647);
  expect(nextSequence(2_147_483_640, 8)).toBe(0);
  expect(nextSequence(2_147_483_647, 1)).toBe(0);
  expect(nextSequence(2_147_483_646, 10)).toBe(8);
});
