// The Kafka bus alone, without PostgreSQL or DuckDB: CPU and wall time per event to publish 6 x 10k
// events of the demo's orders table (encode, client, compression, acks=all from 3 librdkafka mock
// brokers), then to consume them into a sink that only counts (fetch, decompression, decode, batching).
// Usage: bun bench/kafka-client.ts [compression=zstd] [worker=0] [event_schema=embedded]
//   (worker=1: fetch and decode in a Worker; topic: payload-only events, layouts on the schema topic)
import { readFileSync } from 'node:fs';
import { createKafkaBus } from '../src/bus/index.ts';
import type { BatchSink, Change, ChangeBatch } from '../src/change/index.ts';
import { ORDERS } from './orders-schema.ts';
import { startKafkaMock } from '../test/support/kafka.ts';
import { kafkaOptions } from '../test/support/kafka-bus.ts';

const compression = (process.argv[2] ?? 'zstd') as 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
const fetchWorker = process.argv[3] === '1';
const eventSchema = (process.argv[4] ?? 'embedded') as 'embedded' | 'topic';
const N = 10_000;
const BATCHES = 6;

/** CPU time of this process's main thread (the JS thread), in µs, from /proc (Linux). */
function mainThreadUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime + stime, in clock ticks of 10 ms
}

function per(events: number, started: number, cpu0: NodeJS.CpuUsage, main0: number): string {
  const cpu = process.cpuUsage(cpu0);
  return (
    `${(((performance.now() - started) / events) * 1000).toFixed(1)} µs wall, ${((cpu.user + cpu.system) / events).toFixed(1)} µs CPU ` +
    `(all threads; JS thread ${((mainThreadUs() - main0) / events).toFixed(1)}) per event`
  );
}

const kafka = await startKafkaMock({ brokers: 3 });
try {
  await kafka.createTopic('kc.public.orders', 6, 3);
  const opts = kafkaOptions(kafka.bootstrap, 'kc', { partitions: 6, batchRows: N, lingerMs: 0, maxLag: 0, compression, fetchWorker, eventSchema });
  const bus = createKafkaBus(opts, { loadOffsets: async () => [], log: () => {} });
  const batches: ChangeBatch[] = Array.from({ length: BATCHES }, (_, b) => {
    const lsn = 1000n + BigInt(b) * 10n;
    const changes: Change[] = Array.from({ length: N }, (_, i) => ({
      op: 'I', table: 'public.orders', lsn, seq: i, commitTimeUs: 1764057600123456n, xid: 771,
      row: [String(b * N + i), String(i % 1000), String(i % 50), '12.34', '3', 'pending', '2026-11-23 00:00:01+00'],
    }));
    return { tables: new Map([['public.orders', ORDERS]]), changes, ackLsn: lsn };
  });
  let started = performance.now();
  let cpu0 = process.cpuUsage();
  let main0 = mainThreadUs();
  await Promise.all(batches.map((b) => bus.publish(b)));
  console.log(`publish (${compression}, ${eventSchema}): ${per(N * BATCHES, started, cpu0, main0)}`);
  let applied = 0;
  const sink: BatchSink = { apply: async (b) => void (applied += b.changes.length) };
  const stop = new AbortController();
  started = performance.now();
  cpu0 = process.cpuUsage();
  main0 = mainThreadUs();
  const running = bus.run(sink, stop.signal);
  const until = Date.now() + 60_000;
  while (applied < N * BATCHES && Date.now() < until) await Bun.sleep(5);
  console.log(`consume (${compression}, ${eventSchema}${fetchWorker ? ', worker' : ''}): ${applied < N * BATCHES ? `only ${applied} events in 60 s` : per(N * BATCHES, started, cpu0, main0)}`);
  stop.abort();
  await running;
  await bus.close();
} finally {
  await kafka.stop();
}
