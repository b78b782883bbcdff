/**
 * `bus.max_batch_bytes` against the librdkafka mock: a batch larger than the limit per partition goes out
 * in several sends whose record batches (read back from the brokers) are each within it, complete and in
 * order; a single message over the limit, or a broker answering MESSAGE_TOO_LARGE, stops publishing with
 * KAFKA_MESSAGE_TOO_LARGE in readiness and loses nothing (the slot is not confirmed past it; a restart
 * with the limit raised brings the rows).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Consumer } from '@platformatic/kafka';
import type { Sql } from 'postgres';
import { createKafkaBus } from '../../src/bus/index.ts';
import { connectSql } from '../../src/source/index.ts';
import { parseLsn } from '../../src/source/lsn.ts';
import { batchOf, Recorder } from '../contract/bus.case.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { startKafkaMock, type KafkaMock, KAFKA_API_KEY } from '../support/kafka.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { expectInSync, type KafkaRunning, startKafkaPipeline, waitStreaming } from './kafka-harness.ts';

let kafka: KafkaMock;
let url: string;
let sql: Sql;
let dir: string;
const running: KafkaRunning[] = [];

beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3 });
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_kafka_bsz_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kafka-bsz-'));
}, 300_000);

afterAll(async () => {
  for (const p of running) await p.stop().catch(() => {});
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Batch = { firstOffset: bigint; length: number; lastOffsetDelta: number; producerId: bigint; producerEpoch: number; firstSequence: number };
type Held = { bytes: number; count: number; producerId: bigint; epoch: number; sequence: number };

/** Every record batch the brokers hold for `topic`, per partition: its size on the wire (length + 12), record count, producer id, epoch and base sequence. */
async function recordBatches(topic: string): Promise<Map<number, Held[]>> {
  const consumer = new Consumer({ bootstrapBrokers: kafka.bootstrap, groupId: 'bsz-reader', clientId: 'bsz-reader' });
  try {
    const md = await consumer.metadata({ topics: [topic], forceUpdate: true });
    const t = md.topics.get(topic)!;
    const out = new Map<number, Held[]>();
    for (let partition = 0; partition < t.partitionsCount; partition++) {
      const list: Held[] = [];
      let next = 0n;
      for (;;) {
        const res = await consumer.fetch({
          node: t.partitions[partition]!.leader,
          maxWaitTime: 0,
          minBytes: 1,
          maxBytes: 8 << 20,
          topics: [{ topicId: t.id, partitions: [{ partition, fetchOffset: next, partitionMaxBytes: 8 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
        });
        const pr = res.responses[0]!.partitions[0]!;
        const got = ((pr.records ?? []) as Batch[]).filter((b) => b.firstOffset >= next);
        for (const b of got) {
          list.push({ bytes: b.length + 12, count: b.lastOffsetDelta + 1, producerId: b.producerId, epoch: b.producerEpoch, sequence: b.firstSequence });
          next = b.firstOffset + BigInt(b.lastOffsetDelta) + 1n;
        }
        if (got.length === 0 || next >= pr.highWatermark) break;
      }
      out.set(partition, list);
    }
    return out;
  } finally {
    await consumer.close(true).catch(() => {});
  }
}

for (const [compression, idempotent] of [['none', false], ['gzip', false], ['gzip', true]] as const) {
test(`a batch over bus.max_batch_bytes per partition: split into record batches within the limit, complete and in order (${compression}${idempotent ? ', idempotent' : ''})`, async () => {
  const prefix = `bsz-${compression}${idempotent ? '-idem' : ''}`;
  const topic = `${prefix}.public.items`;
  await kafka.createTopic(topic, 3, 3);
  const limit = 16_384;
  const bus = createKafkaBus(kafkaOptions(kafka.bootstrap, prefix, { maxBatchBytes: limit, maxLag: 0, compression, idempotent }), { loadOffsets: async () => [], log: () => {} });
  const sink = new Recorder();
  const stop = new AbortController();
  const run = bus.run(sink, stop.signal);
  try {
    // 2,000 changes of 30 keys, ~700 bytes each as embedded-schema events: ~450 KB per partition in one
    // publish (two with gzip: the first send sizes by the uncompressed measure, the next by its ratio).
    const n = compression === 'gzip' ? 4000 : 2000;
    await bus.publish(batchOf(2000, 30, 'x'.repeat(300)));
    if (compression === 'gzip') await bus.publish(batchOf(2000, 30, 'y'.repeat(300)));
    await sink.waitFor(n, 60_000);
    expect(sink.changes.length).toBe(n);
    // Per key, every change once and in the source's order.
    const seqs = new Map<string, number[]>();
    for (const c of sink.changes) seqs.set(String(c.row[0]), [...(seqs.get(String(c.row[0])) ?? []), Number(String(c.row[1]).split('-').at(-1))]);
    expect(seqs.size).toBe(30);
    const once = (key: number) => Array.from({ length: 2000 }, (_, i) => i).filter((i) => i % 30 === key);
    for (const [key, s] of seqs) expect(s).toEqual(compression === 'gzip' ? [...once(Number(key)), ...once(Number(key))] : once(Number(key)));

    const held = await recordBatches(topic);
    let total = 0;
    for (const [partition, list] of held) {
      const bytes = list.reduce((a, b) => a + b.bytes, 0);
      const raw = list.reduce((a, b) => a + b.count, 0) * 700;
      if (process.env.IT_DEBUG) console.error(compression, partition, JSON.stringify(list));
      expect({ partition, batches: list.length > (compression === 'none' ? 3 : 1) }).toEqual({ partition, batches: true });
      if (compression === 'none') expect({ partition, more: bytes > 3 * limit }).toEqual({ partition, more: true }); // several limits' worth
      // gzip: after the first send the ratio lets a send carry more than the limit's worth of uncompressed events.
      else expect({ partition, fewer: list.length < raw / limit }).toEqual({ partition, fewer: true });
      for (const b of list) expect(b.bytes).toBeLessThanOrEqual(limit);
      total += list.reduce((a, b) => a + b.count, 0);
    }
    expect(total).toBe(n);
    // On the wire: idempotent, one producer id of the brokers' (epoch 0) and each partition's base sequences
    // 0, then each batch's after the records before it; otherwise producer id, epoch and sequence -1.
    const all = [...held.values()].flat();
    if (idempotent) {
      const ids = new Set(all.map((b) => b.producerId));
      expect(ids.size).toBe(1);
      expect([...ids][0]!).toBeGreaterThanOrEqual(0n);
      expect(new Set(all.map((b) => b.epoch))).toEqual(new Set([0]));
      for (const [partition, list] of held) {
        const want = list.map((_, i) => list.slice(0, i).reduce((a, b) => a + b.count, 0));
        expect({ partition, sequences: list.map((b) => b.sequence) }).toEqual({ partition, sequences: want });
      }
    } else expect(all.every((b) => b.producerId === -1n && b.epoch === -1 && b.sequence === -1)).toBe(true);
  } finally {
    stop.abort();
    await run.catch(() => {});
    await bus.close();
  }
}, 120_000);
}

async function confirmed(slot: string): Promise<bigint> {
  const [r] = await sql`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ${slot}`;
  return parseLsn(String(r!.lsn));
}

async function walLsn(): Promise<bigint> {
  const [r] = await sql`SELECT pg_current_wal_lsn()::text AS lsn`;
  return parseLsn(String(r!.lsn));
}

test('a row over bus.max_batch_bytes: KAFKA_MESSAGE_TOO_LARGE in readiness, nothing confirmed past it; raising the limit brings it', async () => {
  const prefix = 'bigrow';
  const slot = 'bsz_bigrow';
  await kafka.createTopic(`${prefix}.public.docs`, 3, 3);
  await sql.unsafe(`CREATE TABLE docs (id bigint PRIMARY KEY, body text);
    INSERT INTO docs SELECT g, 'small ' || g FROM generate_series(1, 20) g; CREATE PUBLICATION ${slot}_pub FOR TABLE docs`);
  const start = (maxBatchBytes: number) =>
    startKafkaPipeline({ dir, url, slot, bootstrap: kafka.bootstrap, prefix, file: `${slot}-${maxBatchBytes}.duckdb`, bus: { maxBatchBytes } });
  let p = await start(64 * 1024);
  running.push(p);
  await waitStreaming(p, sql);
  await expectInSync(sql, [p.warehouse], 'docs');

  const before = await walLsn();
  await sql`INSERT INTO docs VALUES (100000, ${'huge '.repeat(40_000)})`; // ~200 KB
  await sql`INSERT INTO docs VALUES (100001, 'after the huge one')`;
  await waitFor(async () => p.bus.readiness!().ready === false, 30_000, 'readiness never reported the message as too large');
  const detail = p.bus.readiness!().detail;
  expect(detail).toContain('KAFKA_MESSAGE_TOO_LARGE');
  expect(detail).toContain('public.docs');
  expect(detail).toContain('{"id":"100000"}');
  expect(detail).toContain('bus.max_batch_bytes = 65536');
  expect(detail).toContain('message.max.bytes');
  // Held, not retried and not skipped: the slot stays before the huge row, the row after it is not applied either.
  await Bun.sleep(1500);
  expect(await confirmed(slot)).toBeLessThanOrEqual(before);
  const duck = await p.warehouse.connect();
  try {
    const rows = (await duck.runAndReadAll('SELECT count(*)::INT FROM public.docs WHERE id >= 100000')).getRows();
    expect(Number(rows[0]![0])).toBe(0);
  } finally {
    duck.closeSync();
  }
  await p.stop();
  running.splice(running.indexOf(p), 1);

  p = await start(1_000_000);
  running.push(p);
  await expectInSync(sql, [p.warehouse], 'docs', 60_000);
}, 240_000);

for (const idempotent of [false, true]) {
test(`a broker answering MESSAGE_TOO_LARGE: the same clear error, not an endless retry; nothing lost${idempotent ? ' (idempotent)' : ''}`, async () => {
  const prefix = idempotent ? 'refusedidem' : 'refused';
  const slot = idempotent ? 'bsz_refusedidem' : 'bsz_refused';
  const notes = idempotent ? 'notesidem' : 'notes';
  await kafka.createTopic(`${prefix}.public.${notes}`, 3, 3);
  await sql.unsafe(`CREATE TABLE ${notes} (id bigint PRIMARY KEY, body text);
    INSERT INTO ${notes} SELECT g, 'note ' || g FROM generate_series(1, 20) g; CREATE PUBLICATION ${slot}_pub FOR TABLE ${notes}`);
  const start = (file: string) => startKafkaPipeline({ dir, url, slot, bootstrap: kafka.bootstrap, prefix, file, bus: { idempotent } });
  let p = await start(`${slot}-1.duckdb`);
  running.push(p);
  await waitStreaming(p, sql);
  await expectInSync(sql, [p.warehouse], notes);

  const before = await walLsn();
  await kafka.pushErrors(KAFKA_API_KEY.Produce, [10]);
  await sql.unsafe(`INSERT INTO ${notes} VALUES (500, 'refused by the broker')`);
  await waitFor(async () => p.bus.readiness!().ready === false, 30_000, 'readiness never reported the refusal');
  const detail = p.bus.readiness!().detail;
  expect(detail).toContain('KAFKA_MESSAGE_TOO_LARGE');
  expect(detail).toContain('MESSAGE_TOO_LARGE');
  expect(detail).toContain('message.max.bytes');
  const retries = (p.bus.status!() as { producer: { retries: number } }).producer.retries;
  await Bun.sleep(1500);
  expect((p.bus.status!() as { producer: { retries: number } }).producer.retries).toBe(retries); // stopped, not retried by the producer
  expect(await confirmed(slot)).toBeLessThanOrEqual(before);
  await p.stop();
  running.splice(running.indexOf(p), 1);
  await kafka.clearErrors(KAFKA_API_KEY.Produce);

  p = await start(`${slot}-1.duckdb`);
  running.push(p);
  await expectInSync(sql, [p.warehouse], notes, 60_000);
}, 240_000);
}
