/** Shared fixtures of the tiering tests: a small orders table and the options of a tiering stage in a folder. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, ChangeBatch, TableSchema } from '../../src/change/index.ts';
import { createLogger } from '../../src/log.ts';
import { createTiering, type TieringOptions } from '../../src/tiering/index.ts';
import { createWarehouse, type Warehouse } from '../../src/warehouse/index.ts';
import { lockDownInstance } from '../../src/warehouse/query.ts';

/** public.orders(order_id bigint key, price numeric(10,2), order_date timestamptz). */
export const ORDERS: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { key: true, name: 'order_id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'price', typeOid: 1700, typeMod: ((10 << 16) | 2) + 4 },
    { key: false, name: 'order_date', typeOid: 1184, typeMod: -1 },
  ],
};

export const DAY_MS = 86_400_000;

/** An orders change `ageDays` old (order date and commit time), at (lsn, seq). */
export function orderChange(op: Change['op'], id: number, price: string, ageDays: number, lsn: bigint, seq: number): Change {
  const at = Date.now() - ageDays * DAY_MS;
  return { op, table: 'public.orders', row: [String(id), price, new Date(at).toISOString()], lsn, seq, commitTimeUs: BigInt(at) * 1000n };
}

/** hot_days 30, warm_days 180, warm and cold (file://) folders under `dir`, grace 0, orders by order_date. */
export function tieringOptionsIn(dir: string, extra: Partial<TieringOptions> = {}): TieringOptions {
  return {
    hotDays: 30,
    warmDays: 180,
    warmDir: join(dir, 'warm'),
    coldUrl: `file://${join(dir, 'cold')}`,
    s3: { endpoint: '', region: 'us-east-1', accessKeyId: '', secretAccessKey: '' },
    schedule: '0 3 * * *',
    graceMinutes: 0,
    coldCacheDir: join(dir, 'cache'),
    coldCacheSize: '100MB',
    compactMinFiles: 8,
    compactDeletedRatio: 0.3,
    maxFileRows: 8_000_000,
    tables: { 'public.orders': { timeColumn: 'order_date' } },
    ...extra,
  };
}

/** A batch of orders changes. */
export function ordersBatch(changes: Change[]): ChangeBatch {
  return { tables: new Map([['public.orders', ORDERS]]), changes };
}

/**
 * A warehouse with `n` orders spread over two years (one per ~day), committed at their order dates,
 * and a tiering stage over it (folders under a temp dir registered in `temps`, from tempWarehouses()).
 */
export async function tieredOrders(temps: { dirs: string[]; open: Warehouse[] }, n = 730, extra: Partial<TieringOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-tier-'));
  temps.dirs.push(dir);
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  temps.open.push(w);
  const changes = Array.from({ length: n }, (_, i) => orderChange('I', i + 1, `${(i % 97) + 1}.25`, (i * 730) / n, 100n + BigInt(i), 0));
  await w.apply(ordersBatch(changes));
  const opts = tieringOptionsIn(dir, extra);
  const tiering = createTiering(opts, { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') });
  await lockDownInstance(w.instance, { allowedDirectories: [...tiering.readDirs, dir] });
  await tiering.init();
  return { w, tiering, dir, opts };
}

/** The first row of a query, as strings. */
export async function firstRow(w: Warehouse, sql: string): Promise<string[]> {
  const c = await w.connect();
  try {
    return (await c.runAndReadAll(sql)).getRows()[0]!.map((v) => String(v));
  } finally {
    c.closeSync();
  }
}
