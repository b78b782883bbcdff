/** Shared fixtures of the tiering tests: a small orders table and the options of a tiering stage in a folder. */
import { join } from 'node:path';
import type { Change, TableSchema } from '../../src/change/index.ts';
import type { TieringOptions } from '../../src/tiering/index.ts';

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
