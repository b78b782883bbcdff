// The Kafka event codec alone: encode, then decode, 50k events of the demo's orders table on this
// thread, µs per event (best of 5 rounds after 2 warm-up rounds). `tree` = another checkout (e.g. a
// `git archive` of main) to compare side by side with this one.
// Usage: bun bench/kafka-codec.ts [embedded|topic] [tree=.]
import { join } from 'node:path';

const mode = process.argv[2] ?? 'topic';
const dir = process.argv[3] ?? join(import.meta.dir, '..');
const { EventEncoder } = await import(`${dir}/src/bus/kafka-encode.ts`);
const { decodeEvent, registerLayout } = await import(`${dir}/src/bus/kafka-decode.ts`);
const t = { schema: 'public', table: 'orders', columns: [['order_id', 20, true], ['customer_id', 20], ['product_id', 20], ['price', 1700], ['quantity', 23], ['status', 25], ['order_date', 1184]].map(([n, o, k]) => ({ name: n, typeOid: o, typeMod: -1, key: !!k })) };
const N = 50_000;
const changes = Array.from({ length: N }, (_, i) => ({ op: 'I', table: 'public.orders', row: [String(1000000 + i), String(i % 1000), String(i % 50), '12.34', '3', 'pending', '2026-11-23 00:00:01+00'], lsn: 123456789n + BigInt(Math.floor(i / 10000)), seq: i % 10000, commitTimeUs: 1764057600123456n + BigInt(Math.floor(i / 10000)), xid: 771 }));
const enc = new EventEncoder('ducktail', 'ducktail-0.1.0', mode);
if (mode === 'topic') { const l = enc.layout(t); registerLayout(l.id, l.value); }
let bestE = Infinity, bestD = Infinity;
for (let r = 0; r < 7; r++) {
  enc.startBatch();
  let t0 = performance.now();
  const vals = [];
  for (const c of changes) vals.push(enc.encode(c, t, 6, () => 0, 0n)[0].value);
  const e = performance.now() - t0;
  enc.release(enc.endBatch());
  t0 = performance.now();
  for (const v of vals) decodeEvent(v);
  const d = performance.now() - t0;
  if (r >= 2) { bestE = Math.min(bestE, e); bestD = Math.min(bestD, d); }
}
console.log(`${dir} ${mode}: encode ${((bestE / N) * 1000).toFixed(2)} µs, decode ${((bestD / N) * 1000).toFixed(2)} µs per event`);
