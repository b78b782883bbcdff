// The consumer's record-batch parse alone: the client's readRecordsBatches against ducktail's own reader
// (src/bus/kafka-fetch-parse.ts), on two record batches of 1,666 payload-only orders events (~470 bytes,
// the producer's batch of one partition per 10k-row send), µs per record, best of 9 rounds of 10 after
// 3 warm-up rounds. "chunked": the response as it arrives, a DynamicBuffer of 64 KB socket chunks.
// Usage: bun bench/kafka-records.ts
import { DynamicBuffer } from '@platformatic/dynamic-buffer';
import { Reader, readRecordsBatches } from '@platformatic/kafka';
import { readBatches, releaseRecords, sectionOf } from '../src/bus/kafka-fetch-parse.ts';
import { recordBatch } from '../src/bus/kafka-record-batch.ts';

const value = Buffer.from(
  '{"before":null,"after":{"order_id":"1000000","customer_id":"1","product_id":"1","price":"12.34","quantity":"3","status":"pending","order_date":"2026-11-23 00:00:01+00"},"source":{"version":"ducktail-0.1.0","connector":"postgresql","name":"ducktail","ts_ms":1764057600123,"ts_us":1764057600123456,"snapshot":"false","db":"","schema":"public","table":"orders","txId":771,"lsn":123456789,"seq":5,"pos_lsn":123456789,"pos_ord":10,"unchanged":[],"layout":"6645950b1b87ce25e9cf0ff2"},"op":"c","ts_ms":1796646266304}',
);
const messages = Array.from({ length: 1666 }, (_, i) => ({ topic: 't', partition: 0, key: `{"order_id":"${1000000 + i}"}`, value }));
const batch = await recordBatch(messages, messages.map((_, i) => i), 'none', 1_765_000_000_000n);
const section = Buffer.concat([batch, batch]);
const chunks: Buffer[] = [];
for (let i = 0; i < section.length; i += 65536) chunks.push(section.subarray(i, i + 65536));
const chunked = () => {
  const d = new DynamicBuffer();
  for (const c of chunks) d.append(c);
  return d;
};
const n = 2 * messages.length;
let sink = 0;
function time(name: string, f: () => void): void {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 12; r++) {
    const t0 = performance.now();
    for (let k = 0; k < 10; k++) f();
    if (r >= 3) best = Math.min(best, (performance.now() - t0) / 10);
  }
  console.log(`${name}: ${((best / n) * 1000).toFixed(3)} µs a record`);
}
time("client's readRecordsBatches, chunked", () => {
  for (const b of readRecordsBatches(Reader.from(chunked()))) sink += b.records.length;
});
time("client's readRecordsBatches, one buffer", () => {
  for (const b of readRecordsBatches(Reader.from(section))) sink += b.records.length;
});
time('own readBatches, chunked (slice = one copy)', () => {
  const d = chunked();
  for (const b of readBatches(d.slice(0, d.length))) sink += b.records.length;
});
time('own readBatches, chunked (sectionOf: the copy in a reused arena)', () => {
  const d = chunked();
  const owner = {};
  for (const b of readBatches(sectionOf(d, 0, d.length, owner))) sink += b.records.length;
  releaseRecords(owner);
});
time('own readBatches, one buffer', () => {
  for (const b of readBatches(section)) sink += b.records.length;
});
if (sink === 0) console.log('no records');
