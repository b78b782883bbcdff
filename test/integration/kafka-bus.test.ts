import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { connectSql, readSlot } from '../../src/source/index.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { createOrdersDocs, expectInSync, historyDuplicates, startKafkaPipeline, truncateDocsAndWrite, writeOrdersDocsChanges } from './kafka-harness.ts';

let url: string;
let sql: Sql;
let dir: string;
let kafka: KafkaMock;
const SLOT = 'it_kafka';
const PREFIX = 'shop';
const TRICKY = 'ünï "q" back\\slash ключ 鍵 😀 tab\there\nline \u0001\u001f';

beforeAll(async () => {
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_kafka_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kafka-'));
  kafka = await startKafkaMock({ brokers: 3 });
  // The mock has no CreateTopics: topics are made here, as an operator would on a locked-down cluster.
  for (const t of ['orders', 'docs', 'extra']) await kafka.createTopic(`${PREFIX}.public.${t}`, 3, 3);
  await kafka.createTopic(`${PREFIX}-dead-letter`, 1, 3);
  await createOrdersDocs(sql);
}, 300_000);

afterAll(async () => {
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Kafka bus against real PostgreSQL and the librdkafka mock cluster', () => {
  test('copy, inserts, updates, deletes, key change, TOAST, truncate: the warehouse equals the source; a restart resumes from stored offsets', async () => {
    // The idempotent producer (bus.idempotent's default): ducktail's record batches with a producer id and sequences.
    const opts = { dir, url, slot: SLOT, bootstrap: kafka.bootstrap, prefix: PREFIX, bus: { idempotent: true } };
    const p = await startKafkaPipeline(opts);
    await waitFor(async () => p.status!.phase === 'streaming', 30_000, 'streaming');
    await expectInSync(sql, [p.warehouse], 'orders');
    await expectInSync(sql, [p.warehouse], 'docs');

    await writeOrdersDocsChanges(sql);
    await expectInSync(sql, [p.warehouse], 'orders');
    await expectInSync(sql, [p.warehouse], 'docs');
    // TOAST: the unchanged body was filled from the current row, never written as NULL.
    const duck = await p.warehouse.connect();
    expect(Number((await duck.runAndReadAll('SELECT count(*) FROM history.docs WHERE body IS NULL')).getRows()[0]![0])).toBe(0);
    duck.closeSync();

    // The slot moves only past what Kafka acknowledged: by now everything.
    const status = p.bus.status!() as { consumer: { partitions: { lag: string }[] } };
    expect(status.consumer.partitions).toHaveLength(9); // 3 topics (orders, docs, extra) x 3 partitions
    await waitFor(async () => ((await readSlot(sql, SLOT))?.confirmedFlushLsn ?? 0n) >= p.warehouse.progress.current.ackLsn, 10_000, 'slot confirm');
    await p.stop();

    // Changes while stopped, then a truncate with rows after it in the same transaction.
    await sql`UPDATE orders SET qty = qty + 100 WHERE id <= 50`;
    const again = await startKafkaPipeline(opts);
    await expectInSync(sql, [again.warehouse], 'orders');
    await truncateDocsAndWrite(sql);
    await expectInSync(sql, [again.warehouse], 'docs');
    expect(await historyDuplicates(again.warehouse, 'orders')).toBe(0);

    // A table created with rows while streaming joins the publication and is copied live: its rows
    // (lsn 0) travel at that copy's consistent point.
    await sql.unsafe(`CREATE TABLE extra (id int PRIMARY KEY, v text); INSERT INTO extra SELECT g, (g * 7)::text FROM generate_series(1, 300) g`);
    await sql`UPDATE extra SET v = 'changed' WHERE id <= 10`;
    await expectInSync(sql, [again.warehouse], 'extra');
    await again.stop();
  }, 120_000);

  test('kcat reads <prefix>.public.orders from the beginning: every message is a Debezium event', async () => {
    const proc = Bun.spawn(['kcat', '-C', '-b', kafka.bootstrap.join(','), '-t', `${PREFIX}.public.orders`, '-o', 'beginning', '-e', '-q', '-f', '%p\t%k\t%s\n'], {
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines.length).toBeGreaterThan(1500);
    const ops = new Set<string>();
    for (const line of lines) {
      const [, key, value] = line.split('\t') as [string, string, string];
      const event = JSON.parse(value) as { schema: { name: string }; payload: Record<string, unknown> & { source: Record<string, unknown>; op: string } };
      expect(event.schema.name).toBe(`${PREFIX}.public.orders.Envelope`);
      expect(Object.keys(event.payload).sort()).toEqual(['after', 'before', 'op', 'source', 'ts_ms']);
      expect(event.payload.source).toMatchObject({ connector: 'postgresql', schema: 'public', table: 'orders' });
      for (const f of ['lsn', 'txId', 'ts_ms']) expect(event.payload.source).toHaveProperty(f);
      if (event.payload.op !== 't') expect(JSON.parse(key)).toHaveProperty('id');
      ops.add(event.payload.op);
    }
    expect([...ops].sort()).toEqual(['c', 'd', 'r', 't', 'u']);
  });

  test('payload-only events (event_schema "topic"): the warehouse equals the source; each event names its layout, which <prefix>-schemas holds', async () => {
    const prefix = 'slim';
    for (const t of ['orders', 'docs']) await kafka.createTopic(`${prefix}.public.${t}`, 3, 3);
    // The schema topic and `extra`'s are left to the idempotent producer (the default): the mock auto-creates
    // them. (The client's idempotent producer used to retry the lookup of a missing topic forever.)
    const p = await startKafkaPipeline({ dir, url, slot: 'it_kafka_slim', bootstrap: kafka.bootstrap, prefix, file: 'slim.duckdb', bus: { eventSchema: 'topic', idempotent: true } });
    await waitFor(async () => p.status!.phase === 'streaming', 30_000, 'streaming');
    await sql`UPDATE orders SET price = price + 2, note = 'slim' WHERE id % 7 = 0`;
    await sql`DELETE FROM orders WHERE id % 11 = 0`;
    await sql`UPDATE docs SET title = 'slim' WHERE id = 3`;
    // Values the producer writes into JSON from pgoutput's bytes: quotes, backslashes, control characters,
    // non-ASCII (one long enough that its length has a byte >= 0x80), bytea.
    await sql`UPDATE orders SET note = ${TRICKY}, blob = ${Buffer.from([0xde, 0xad, 0x22, 0x5c])} WHERE id % 13 = 0`;
    await sql`UPDATE orders SET note = repeat('é', 100) WHERE id % 17 = 0`;
    await expectInSync(sql, [p.warehouse], 'orders');
    await expectInSync(sql, [p.warehouse], 'docs');
    await p.stop();

    const kcat = async (topic: string) => {
      const proc = Bun.spawn(['kcat', '-C', '-b', kafka.bootstrap.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k\t%s\n'], { stdout: 'pipe', stderr: 'pipe' });
      const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      expect(code).toBe(0);
      return out.trimEnd().split('\n').map((line) => line.split('\t') as [string, string]);
    };
    const layouts = new Map((await kcat(`${prefix}-schemas`)).map(([key, value]) => [key, JSON.parse(value) as { topic: string; schema: { name: string } }]));
    const events = await kcat(`${prefix}.public.orders`);
    expect(events.length).toBeGreaterThan(100);
    const after = events.map(([, value]) => (JSON.parse(value) as { after: { note?: string; blob?: string } | null }).after);
    expect(after.find((a) => a?.note === TRICKY)?.blob).toBe('\\xdead225c');
    expect(after.some((a) => a?.note === 'é'.repeat(100))).toBe(true);
    for (const [, value] of events) {
      const event = JSON.parse(value) as Record<string, unknown> & { source: { layout: string; table: string } };
      expect(Object.keys(event).sort()).toEqual(['after', 'before', 'op', 'source', 'ts_ms']); // Debezium's payload (schemas.enable=false)
      expect(event.source.table).toBe('orders');
      const layout = layouts.get(event.source.layout);
      expect(layout?.topic).toBe(`${prefix}.public.orders`);
      expect(layout?.schema.name).toBe(`${prefix}.public.orders.Envelope`);
    }
  }, 120_000);
});
