import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { fastDecodes } from '../../src/bus/kafka-decode.ts';
import { connectSql } from '../../src/source/index.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { startPostgres } from '../support/postgres.ts';
import {
  createOrdersDocs,
  expectInSync,
  historyDuplicates,
  ORDERS_DOCS_ROWS,
  startKafkaPipeline,
  truncateDocsAndWrite,
  waitStreaming,
  writeOrdersDocsChanges,
} from './kafka-harness.ts';

// bus.fetchWorker (off by default): the consumer fetches and decodes in a Worker thread and hands the
// main thread packed columns (kafka-fetch.ts `pack` / `unpack`). The same end-to-end check as the bus's
// own test, with the Worker on: the warehouse equals the source, across a restart, nothing twice.

let url: string;
let sql: Sql;
let dir: string;
let kafka: KafkaMock;
const PREFIX = 'fw';

beforeAll(async () => {
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_kafka_fw_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kafka-fw-'));
  kafka = await startKafkaMock({ brokers: 3 });
  for (const t of ['orders', 'docs']) await kafka.createTopic(`${PREFIX}.public.${t}`, 3, 3);
  await kafka.createTopic(`${PREFIX}-dead-letter`, 1, 3);
  await createOrdersDocs(sql);
}, 300_000);

afterAll(async () => {
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Kafka bus with bus.fetchWorker', () => {
  for (const eventSchema of ['embedded', 'topic'] as const) {
    test(`events ${eventSchema}: copy, inserts, updates, deletes, key change, TOAST, truncate through the fetch Worker; a restart resumes`, async () => {
      const logs: string[] = [];
      const slot = `it_kafka_fw_${eventSchema}`;
      const prefix = `${PREFIX}${eventSchema === 'topic' ? '-slim' : ''}`;
      if (eventSchema === 'topic') for (const t of ['orders', 'docs']) await kafka.createTopic(`${prefix}.public.${t}`, 3, 3);
      const opts = {
        dir, url, slot, bootstrap: kafka.bootstrap, prefix, file: `${eventSchema}.duckdb`,
        bus: { fetchWorker: true, eventSchema }, log: (m: string) => logs.push(m),
      };
      // Events decoded on this thread go through decodeEvent's fast path and count here; the Worker's do not.
      const decodedHere = fastDecodes();
      const p = await startKafkaPipeline(opts);
      await waitStreaming(p, sql);
      await expectInSync(sql, [p.warehouse], 'orders');
      await expectInSync(sql, [p.warehouse], 'docs');
      await writeOrdersDocsChanges(sql);
      await expectInSync(sql, [p.warehouse], 'orders');
      await expectInSync(sql, [p.warehouse], 'docs');
      await p.stop();

      // Changes while stopped, a truncate with rows after it, then the same again after a restart.
      await sql`UPDATE orders SET qty = qty + 100 WHERE id <= 50`;
      const again = await startKafkaPipeline(opts);
      await expectInSync(sql, [again.warehouse], 'orders');
      await truncateDocsAndWrite(sql);
      await expectInSync(sql, [again.warehouse], 'docs');
      expect(await historyDuplicates(again.warehouse, 'orders')).toBe(0);
      await again.stop();

      // The Worker did the decoding: it never failed over to this thread, and this thread decoded nothing.
      expect(logs.filter((m) => /fetch worker|no fetch worker/.test(m))).toEqual([]);
      expect(fastDecodes()).toBe(decodedHere);
      // Back to the tables as they were for the next case.
      await sql.unsafe(`TRUNCATE orders, docs; ${ORDERS_DOCS_ROWS}`);
    }, 180_000);
  }
});
