import { expect, test } from 'bun:test';
import { crc32c, createRecordsBatch, Reader, readRecordsBatch } from '@platformatic/kafka';
import { readBatches } from './kafka-fetch-parse.ts';
import { type Compression, type RawMessage, recordBatch } from './kafka-produce.ts';

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
