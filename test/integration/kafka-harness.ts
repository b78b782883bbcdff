/** Shared by the Kafka bus integration tests: a pipeline (PostgreSQL -> Kafka mock -> DuckDB) in process. */
import { expect } from 'bun:test';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { createKafkaBus, type Bus, type KafkaBusOptions } from '../../src/bus/index.ts';
import { startPipeline } from '../../src/pipeline.ts';
import type { SourceStatus } from '../../src/source/index.ts';
import { createWarehouse, type Warehouse } from '../../src/warehouse/index.ts';
import { kafkaOptions } from '../support/kafka-bus.ts';
import { snapshotBoth, waitFor } from './compare.ts';

export interface KafkaRunning {
  warehouse: Warehouse;
  bus: Bus;
  status: SourceStatus | null;
  stop(): Promise<void>;
}

export interface StartOptions {
  dir: string;
  url: string;
  slot: string;
  bootstrap: string[];
  prefix: string;
  /** false: consume only (a second instance). */
  source?: boolean;
  file?: string;
  bus?: Partial<KafkaBusOptions>;
  /** Also gets every message the pipeline logs. */
  log?: (message: string) => void;
}

/** Starts warehouse + Kafka bus + source the way the appliance does. */
export async function startKafkaPipeline(o: StartOptions): Promise<KafkaRunning> {
  const warehouse = await createWarehouse({ path: join(o.dir, o.file ?? 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: o.slot });
  const log = (m: string) => {
    o.log?.(m);
    if (process.env.IT_DEBUG) console.error(`[${o.file ?? 'w'}]`, m);
  };
  const bus = createKafkaBus(kafkaOptions(o.bootstrap, o.prefix, { batchRows: 500, ...o.bus }), {
    loadOffsets: () => warehouse.progress.kafkaOffsets(),
    log,
  });
  const pipeline = startPipeline({
    warehouse,
    bus,
    source:
      o.source === false
        ? null
        : { url: o.url, slot: o.slot, publication: `${o.slot}_pub`, tables: [], batchRows: 500, batchMs: 50, statusIntervalMs: 200, connectTimeoutS: 10 },
    log,
  });
  return {
    warehouse,
    bus,
    status: pipeline.source?.status ?? null,
    async stop() {
      await pipeline.stop();
      await warehouse.close();
    },
  };
}

/**
 * Waits until the source streams (its initial copy is on Kafka). On timeout the error says where the
 * source stood (phase, error, copy progress) and what the bus reported, so a slow run tells from a stuck one.
 */
export async function waitStreaming(p: KafkaRunning, sql: Sql, timeoutMs = 90_000): Promise<void> {
  await waitFor(async () => p.status!.phase === 'streaming', timeoutMs, 'streaming').catch(async (e: Error) => {
    const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));
    const slots = await sql`SELECT count(*)::int AS n, current_setting('max_replication_slots') AS max FROM pg_replication_slots`.catch(() => null);
    throw new Error(`${e.message}; source ${json(p.status)}; bus ${json(p.bus.readiness?.())} ${json(p.bus.status?.())}; slots ${json(slots)}`);
  });
}

/** Rows of the source table and of the mirrors of every warehouse, together (several instances split the keys). */
export async function mirrorRows(sql: Sql, warehouses: Warehouse[], table: string) {
  let source: (string | null)[][] = [];
  const mirror: (string | null)[][] = [];
  for (const w of warehouses) {
    const duck = await w.connect();
    try {
      const both = await snapshotBoth(sql, duck, 'public', table);
      source = both.source;
      mirror.push(...both.mirror);
    } finally {
      duck.closeSync();
    }
  }
  const key = (r: (string | null)[]) => JSON.stringify(r);
  mirror.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  source.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return { source, mirror };
}

/** Waits until the warehouses together hold exactly the source's rows, then asserts it. */
export async function expectInSync(sql: Sql, warehouses: Warehouse[], table: string, timeoutMs = 30_000): Promise<void> {
  const same = async () => {
    try {
      const { source, mirror } = await mirrorRows(sql, warehouses, table);
      return JSON.stringify(source) === JSON.stringify(mirror);
    } catch {
      return false;
    }
  };
  await waitFor(same, timeoutMs, `${table} in sync`).catch(() => {});
  const { source, mirror } = await mirrorRows(sql, warehouses, table);
  expect(mirror.length).toBe(source.length);
  expect(mirror).toEqual(source);
}

/** Count of non-snapshot history rows written twice (same lsn, seq, op). */
export async function historyDuplicates(w: Warehouse, table: string): Promise<number> {
  const duck = await w.connect();
  try {
    const r = await duck.runAndReadAll(
      `SELECT count(*) FROM (SELECT _lsn, _seq, _op FROM history.${table} WHERE _op <> 'R' GROUP BY ALL HAVING count(*) > 1)`,
    );
    return Number(r.getRows()[0]![0]);
  } finally {
    duck.closeSync();
  }
}

/** The source rows of the Kafka bus tests: `orders` (every common type) and `docs` (an out-of-line TOAST body). */
export const ORDERS_DOCS_ROWS = `
  INSERT INTO orders SELECT g, g * 1.25, g % 7, 'row ' || g, '2026-11-23 10:00:00.123456+00'::timestamptz + g * interval '1 second', '\\x01ff', g % 2 = 0
    FROM generate_series(1, 1500) g;
  INSERT INTO docs VALUES (1, 'big', repeat('abcdefghij', 5000)), (2, 'small', 'x');
`;

/** Creates `orders` and `docs` with ORDERS_DOCS_ROWS. */
export async function createOrdersDocs(sql: Sql): Promise<void> {
  await sql.unsafe(`
    CREATE TABLE orders (id bigint PRIMARY KEY, price numeric(10,2), qty int, note text, at timestamptz, blob bytea, flag boolean);
    CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
    ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
    ${ORDERS_DOCS_ROWS}
  `);
}

/** Updates (one to NULL, one unchanged TOAST), deletes, an insert, two key changes, and a 700-insert transaction with an update. */
export async function writeOrdersDocsChanges(sql: Sql): Promise<void> {
  await sql.unsafe(`
    UPDATE orders SET price = price + 1, note = NULL WHERE id % 10 = 0;
    DELETE FROM orders WHERE id % 15 = 0;
    INSERT INTO orders VALUES (9001, 0.01, 1, 'new', now(), NULL, NULL);
    UPDATE orders SET id = 9002 WHERE id = 1;
    UPDATE orders SET id = 1 WHERE id = 2;
    UPDATE docs SET title = 'big v2' WHERE id = 1;
  `);
  await sql.begin(async (tx) => {
    for (let i = 0; i < 700; i++) await tx`INSERT INTO orders VALUES (${10_000 + i}, 1.00, 1, 'tx', now(), NULL, true)`;
    await tx`UPDATE orders SET qty = 99 WHERE id >= 10000`;
  });
}

/** A truncate of `docs` with rows after it in the same transaction, then an update of one of them. */
export async function truncateDocsAndWrite(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`TRUNCATE docs`;
    await tx`INSERT INTO docs VALUES (3, 'after truncate', 'y'), (4, 'four', 'z')`;
  });
  await sql`UPDATE docs SET title = 'four v2' WHERE id = 4`;
}
