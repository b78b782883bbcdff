import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { createKafkaBus } from '../../src/bus/index.ts';
import { connectSql } from '../../src/source/index.ts';
import { batchOf, copyBatch, Recorder } from '../contract/bus.case.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { expectInSync, startKafkaPipeline, waitStreaming } from './kafka-harness.ts';

let kafka: KafkaMock;
let url: string;
let sql: Sql;
let dir: string;

beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3 });
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_kafka_gaps_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kafka-gaps-'));
}, 300_000);

afterAll(async () => {
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Held {
  partitions: { partition: number; held?: { code: string; message: string } }[];
  offsetOutOfRange: number;
}

test('a stored offset the brokers no longer have: a clear error in readiness and status, counted, nothing skipped until a copy arrives', async () => {
  const prefix = 'oor';
  await kafka.createTopic(`${prefix}.public.items`, 1, 3);
  const opts = kafkaOptions(kafka.bootstrap, prefix, { partitions: 1 });
  const writer = createKafkaBus(opts, { loadOffsets: async () => [], log: () => {} });
  for (let i = 0; i < 3; i++) await writer.publish(batchOf(5, 5));

  // This warehouse stored offset 1000 of a partition that holds 15 messages (retention, or a recreated topic).
  const bus = createKafkaBus(opts, { loadOffsets: async () => [{ topic: `${prefix}.public.items`, partition: 0, next: 1000n, lsn: 0n, ord: -1 }], log: () => {} });
  const sink = new Recorder();
  const stop = new AbortController();
  const running = bus.run(sink, stop.signal);
  try {
    await waitFor(async () => bus.readiness!().ready === false, 10_000, 'not ready');
    const readiness = bus.readiness!();
    expect(readiness.detail).toContain('KAFKA_OFFSET_OUT_OF_RANGE');
    expect(readiness.detail).toContain('offset 1000 is no longer on the brokers');
    expect(readiness.detail).toContain('POST /v1/admin/resnapshot {"table": "public.items"}');
    const consumer = (bus.status!() as { consumer: Held }).consumer;
    expect(consumer.offsetOutOfRange).toBe(1);
    expect(consumer.partitions[0]!.held?.code).toBe('KAFKA_OFFSET_OUT_OF_RANGE');
    // Held: the 15 messages it can read are not applied (they would leave the table silently incomplete).
    await writer.publish(batchOf(5, 5));
    await Bun.sleep(500);
    expect(sink.changes).toHaveLength(0);
    expect(consumer.offsetOutOfRange).toBe(1); // counted once per partition, not per retry

    // A copy of the table (a reset at its consistent point, then its rows) ends the hold.
    const copy = copyBatch(1_000_000n);
    await writer.publish(copy);
    await writer.publish({ ...batchOf(1, 1), changes: [{ op: 'I', table: 'public.items', row: ['2', 'after'], lsn: 1_000_100n, seq: 0, commitTimeUs: 1n }] });
    await sink.waitFor(3);
    expect(sink.changes.map((c) => [c.op, ...c.row])).toEqual([['T'], ['R', '1', 'copied'], ['I', '2', 'after']]);
    await waitFor(async () => bus.readiness!().ready, 5_000, 'ready again');
    // The stored offset moved past the copy only: a restart does not read past the gap silently.
    expect(sink.offsets.get(`${prefix}.public.items/0`)!.next).toBeGreaterThan(15n);
  } finally {
    stop.abort();
    await running;
    await bus.close();
    await writer.close();
  }
}, 60_000);

test('layout changes the warehouse cannot apply in place (rewrite-type ADD COLUMN, text -> int) re-copy the table through Kafka', async () => {
  const prefix = 'evo';
  await kafka.createTopic(`${prefix}.public.evo`, 3, 3);
  await kafka.createTopic(`${prefix}.public.other`, 3, 3);
  await sql.unsafe(`
    CREATE TABLE evo (id int PRIMARY KEY, v text);
    CREATE TABLE other (id int PRIMARY KEY, n int);
    INSERT INTO evo SELECT g, g::text FROM generate_series(1, 200) g;
    INSERT INTO other SELECT g, g FROM generate_series(1, 50) g;`);
  const p = await startKafkaPipeline({ dir, url, slot: 'it_kgaps', bootstrap: kafka.bootstrap, prefix, file: 'evo.duckdb' });
  try {
    // About 1-2 s here (slot, a copy of 250 rows through Kafka); generous for a loaded box, and says where it stood if not.
    await waitStreaming(p, sql);
    await expectInSync(sql, [p.warehouse], 'evo');

    // PostgreSQL fills these by rewriting the table: no row changes in the WAL, the copy brings the values.
    await sql.unsafe(`ALTER TABLE evo ADD COLUMN f timestamptz DEFAULT clock_timestamp(), ADD COLUMN g serial;
                      UPDATE evo SET v = v || '!' WHERE id <= 5; UPDATE other SET n = n + 1 WHERE id <= 5;`);
    await expectInSync(sql, [p.warehouse], 'evo');
    await expectInSync(sql, [p.warehouse], 'other');

    // text -> int: DuckDB cannot convert it in place.
    await sql.unsafe(`UPDATE evo SET v = id::text; ALTER TABLE evo ALTER COLUMN v TYPE int USING v::int;
                      UPDATE evo SET v = v + 1000 WHERE id = 1; INSERT INTO other VALUES (51, 51);`);
    await expectInSync(sql, [p.warehouse], 'evo');
    await sql`INSERT INTO evo (id, v) VALUES (201, 201)`;
    await expectInSync(sql, [p.warehouse], 'evo');
    await expectInSync(sql, [p.warehouse], 'other');
    const consumer = (p.bus.status!() as { consumer: Held & { supersededSkipped: number } }).consumer;
    expect(consumer.partitions.every((x) => x.held === undefined)).toBe(true);
    expect(p.bus.readiness!().ready).toBe(true);
  } finally {
    await p.stop();
  }
}, 300_000);
