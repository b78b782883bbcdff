// The Kafka bus's publishing alone (no PostgreSQL, DuckDB or consumer): CPU per event of the main thread,
// the producer's Worker and all threads, after a warm-up, with the producer in its Worker or on the main thread.
// Usage: bun bench/kafka-publish.ts [worker=1] [event_schema=topic] [batches=30] [unpacked=0]
// unpacked=1 (with worker=0): each batch is packed and unpacked on the main thread first (not measured), so the
// main thread encodes rows as the Worker gets them (cells cut out of one string): the Worker's work, profilable.
import { readdirSync, readFileSync } from 'node:fs';
import { createKafkaBus } from '../src/bus/index.ts';
import { packBatch, TableIds, unpackBatch } from '../src/bus/kafka-batch-pack.ts';
import type { Change, ChangeBatch } from '../src/change/index.ts';
import { ORDERS } from './orders-schema.ts';
import { startKafkaMock } from '../test/support/kafka.ts';
import { kafkaOptions } from '../test/support/kafka-bus.ts';

const producerWorker = (process.argv[2] ?? '1') === '1';
const eventSchema = (process.argv[3] ?? 'topic') as 'embedded' | 'topic';
const BATCHES = Number(process.argv[4] ?? 30);
const UNPACKED = process.argv[5] === '1';
// BENCH_IDEMPOTENT=1: the idempotent producer (bus.idempotent's default), not producer id -1.
const IDEMPOTENT = process.env.BENCH_IDEMPOTENT === '1';
const N = 10_000;

/** CPU seconds per thread name of this process (/proc/self/task), the main thread as "main". */
function threads(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = Number(tid) === process.pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch {}
  }
  return out;
}

const ids = new TableIds();
const known = new Map();
function batchesFrom(first: number, count: number): ChangeBatch[] {
  const made = makeBatches(first, count);
  return UNPACKED ? made.map((b) => ({ ...unpackBatch(packBatch(b, ids), known), ackLsn: b.ackLsn })) : made;
}

function makeBatches(first: number, count: number): ChangeBatch[] {
  return Array.from({ length: count }, (_, k) => {
    const b = first + k;
    const lsn = 1000n + BigInt(b) * 10n;
    const changes: Change[] = Array.from({ length: N }, (_, i) => ({
      op: 'I', table: 'public.orders', lsn, seq: i, commitTimeUs: 1764057600123456n, xid: 771,
      row: [String(b * N + i), String(i % 1000), String(i % 50), '12.34', '3', 'pending', '2026-11-23 00:00:01+00'],
    }));
    return { tables: new Map([['public.orders', ORDERS]]), changes, ackLsn: lsn };
  });
}

const kafka = await startKafkaMock({ brokers: 3 });
try {
  await kafka.createTopic('kp.public.orders', 6, 3);
  const opts = kafkaOptions(kafka.bootstrap, 'kp', { partitions: 6, batchRows: N, lingerMs: 0, maxLag: 0, compression: 'none', eventSchema, producerWorker, idempotent: IDEMPOTENT });
  const bus = createKafkaBus(opts, { loadOffsets: async () => [], log: () => {} });
  // Publishes as the source does: up to four batches ahead of the acknowledgements.
  const publish = async (batches: ChangeBatch[]) => {
    const inFlight: Promise<void>[] = [];
    for (const b of batches) {
      inFlight.push(bus.publish(b));
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
  };
  await publish(batchesFrom(0, 6)); // warm-up (JIT, connections, the Worker's start)
  const measured = batchesFrom(6, BATCHES);
  const before = threads();
  const started = performance.now();
  await publish(measured);
  const wall = performance.now() - started;
  const after = threads();
  const events = N * BATCHES;
  const us = (name: string) => (((after.get(name) ?? 0) - (before.get(name) ?? 0)) * 1e6) / events;
  let all = 0;
  for (const [name, s] of after) all += s - (before.get(name) ?? 0);
  const named = [...after.keys()].filter((n) => us(n) >= 0.05).sort((a, b) => us(b) - us(a));
  console.log(
    `publish (${eventSchema}, producer ${producerWorker ? 'in its Worker' : 'on the main thread'}), ${events} events: ${((wall / events) * 1000).toFixed(2)} µs wall, ` +
      `${((all * 1e6) / events).toFixed(2)} µs CPU all threads per event; by thread: ${named.map((n) => `${n} ${us(n).toFixed(2)}`).join(', ')}`,
  );
  await bus.close();
} finally {
  await kafka.stop();
}
