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
