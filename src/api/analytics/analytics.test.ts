import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueryEngine, lockDownInstance } from '../../warehouse/query.ts';
import { createApi } from '../index.ts';
import { type AnalyticsConfig, DEMO_ANALYTICS } from './index.ts';

let dir: string;
let instance: DuckDBInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-analytics-'));
  instance = await DuckDBInstance.create(join(dir, 'w.duckdb'));
  const w = await instance.connect();
  // The demo's orders as the warehouse mirrors them; c1..c4 over three UTC days (a day edge at 23:59:59.999999).
  await w.run(`CREATE SCHEMA public;
    CREATE TABLE public.orders (order_id BIGINT, customer_id BIGINT, product_id BIGINT, price DECIMAL(10,2),
                                quantity INTEGER, status VARCHAR, order_date TIMESTAMPTZ);
    INSERT INTO public.orders VALUES
      (1, 1, 1, 10.00, 2, 'paid',      '2026-11-20 10:00:30+00'),
      (2, 1, 1,  5.50, 1, 'cancelled', '2026-11-20 10:00:45+00'),
      (3, 2, 1,  3.25, 4, 'shipped',   '2026-11-20 11:02:10+01'),
      (4, 3, 1, 100.00, 1, 'delivered', '2026-11-21 23:59:59.999999+00'),
      (5, 2, 1,  1.10, 3, 'pending',   '2026-11-22 00:00:00+00'),
      (6, 4, 1,  7.00, 1, 'cancelled', '2026-11-22 08:00:00+00'),
      (7, 9, 1, 99.00, 1, 'paid',      '2026-11-25 00:00:00+00');
    CREATE TABLE public.guests AS SELECT * FROM public.orders;
    INSERT INTO public.guests VALUES (8, NULL, 1, 4.00, 1, 'paid', '2026-11-21 09:00:00+00');
    CREATE TABLE public.spiky AS SELECT * FROM public.orders WHERE false;
    INSERT INTO public.spiky SELECT i, 1, 1, [10, 12, 10, 12, 10, 100, 10][i + 1], 1, 'paid',
                                    TIMESTAMPTZ '2026-11-23 10:00:00+00' + i * INTERVAL 1 MINUTE FROM range(7) t(i);`);
  w.closeSync();
  await lockDownInstance(instance, { allowedDirectories: [join(dir, 'warm')] });
});

afterAll(() => {
  instance?.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, analytics: Partial<AnalyticsConfig> = {}) {
  const app = createApi({
    query: createQueryEngine({ instance }),
    tables: async () => [],
    readiness: () => ({}),
    version: 'test',
    analytics: { ...DEMO_ANALYTICS, ...analytics },
  });
  return app.request(path);
}

async function rows(path: string, analytics: Partial<AnalyticsConfig> = {}) {
  const res = await get(path, analytics);
  const body = (await res.json()) as { columns: { name: string }[]; rows: unknown[][]; rowCount: number; elapsedMs: number };
  if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(body)}`);
  expect(body.rowCount).toBe(body.rows.length);
  expect(typeof body.elapsedMs).toBe('number');
  return { names: body.columns.map((c) => c.name), rows: body.rows, body };
}

describe('GET /v1/analytics/*', () => {
  test('daily-orders: orders, cancelled, revenue without cancelled, average order value per UTC day', async () => {
    const r = await rows('/v1/analytics/daily-orders?from=2026-11-20&to=2026-11-22');
    expect(r.names).toEqual(['day', 'orders', 'cancelled', 'revenue', 'avg_order_value']);
    expect(r.rows).toEqual([
      ['2026-11-20', 3, 1, '33.00', '16.50'],
      ['2026-11-21', 1, 0, '100.00', '100.00'],
      ['2026-11-22', 2, 1, '3.30', '3.30'],
    ]);
  });

  test('revenue per minute: every bucket present, empty ones 0, cancelled excluded', async () => {
    const r = await rows('/v1/analytics/revenue?bucket=1m&from=2026-11-20T10:00:00Z&to=2026-11-20T10:04:00Z');
    expect(r.names).toEqual(['bucket', 'orders', 'revenue']);
    expect(r.rows).toEqual([
      ['2026-11-20T10:00:00Z', 1, '20.00'],
      ['2026-11-20T10:01:00Z', 0, '0.00'],
      ['2026-11-20T10:02:00Z', 1, '13.00'],
      ['2026-11-20T10:03:00Z', 0, '0.00'],
    ]);
    expect(r.body).toMatchObject({ bucket: '1m', from: '2026-11-20T10:00:00.000Z', to: '2026-11-20T10:04:00.000Z' });
  });

  test('revenue per hour and per day', async () => {
    const h = await rows('/v1/analytics/revenue?bucket=1h&from=2026-11-21T22:00:00Z&to=2026-11-22T01:00:00Z');
    expect(h.rows).toEqual([
      ['2026-11-21T22:00:00Z', 0, '0.00'],
      ['2026-11-21T23:00:00Z', 1, '100.00'],
      ['2026-11-22T00:00:00Z', 1, '3.30'],
    ]);
    const d = await rows('/v1/analytics/revenue?bucket=1d&from=2026-11-20&to=2026-11-23');
    expect(d.rows).toEqual([
      ['2026-11-20T00:00:00Z', 2, '33.00'],
      ['2026-11-21T00:00:00Z', 1, '100.00'],
      ['2026-11-22T00:00:00Z', 1, '3.30'],
      ['2026-11-23T00:00:00Z', 0, '0.00'],
    ]);
  });

  test('top-customers by revenue, limited', async () => {
    const r = await rows('/v1/analytics/top-customers?from=2026-11-20&to=2026-11-22&limit=2');
    expect(r.names).toEqual(['customer', 'orders', 'revenue', 'first_order', 'last_order']);
    expect(r.rows).toEqual([
      [3, 1, '100.00', '2026-11-21T23:59:59Z', '2026-11-21T23:59:59Z'],
      [1, 1, '20.00', '2026-11-20T10:00:30Z', '2026-11-20T10:00:30Z'],
    ]);
  });

  test('customer-activity: new vs returning per day, orders per customer, cancelled orders not counted', async () => {
    const r = await rows('/v1/analytics/customer-activity?from=2026-11-20&to=2026-11-22');
    expect(r.names).toEqual(['day', 'active_customers', 'new_customers', 'returning_customers', 'orders', 'orders_per_customer']);
    expect(r.rows).toEqual([
      ['2026-11-20', 2, 2, 0, 2, '1.00'],
      ['2026-11-21', 1, 1, 0, 1, '1.00'],
      ['2026-11-22', 1, 0, 1, 1, '1.00'],
    ]);
  });

  test('customer-activity: a customer whose first order is before the range returns; orders without a customer are no activity', async () => {
    const expected = [
      ['2026-11-21', 1, 1, 0, 1, '1.00'],
      ['2026-11-22', 1, 0, 1, 1, '1.00'],
    ];
    expect((await rows('/v1/analytics/customer-activity?from=2026-11-21&to=2026-11-22')).rows).toEqual(expected);
    expect((await rows('/v1/analytics/customer-activity?from=2026-11-21&to=2026-11-22', { table: 'public.guests' })).rows).toEqual(expected);
  });

  test('orders-by-status: orders and amount per status, cancelled included', async () => {
    const r = await rows('/v1/analytics/orders-by-status?from=2026-11-20&to=2026-11-22');
    expect(r.names).toEqual(['status', 'orders', 'amount']);
    expect(r.rows).toEqual([
      ['cancelled', 2, '12.50'],
      ['delivered', 1, '100.00'],
      ['paid', 1, '20.00'],
      ['pending', 1, '3.30'],
      ['shipped', 1, '13.00'],
    ]);
  });

  test('anomalies: rolling z-score over the previous window, each anomaly with its score', async () => {
    // Window 5 before 10:05 is 10,12,10,12,10: mean 10.8, sample sd 1.0954; 100 scores 81.4281.
    // The order rate is 1 per minute throughout (sd 0): never scored.
    const r = await rows('/v1/analytics/anomalies?bucket=1m&from=2026-11-23T10:05:00Z&to=2026-11-23T10:07:00Z&window=5&threshold=2', {
      table: 'public.spiky',
    });
    expect(r.names).toEqual(['bucket', 'metric', 'value', 'mean', 'stddev', 'score']);
    expect(r.rows).toEqual([['2026-11-23T10:05:00Z', 'revenue', 100, 10.8, 1.0954, 81.4281]]);
    const config = await rows('/v1/analytics/anomalies?from=2026-11-23T10:05:00Z&to=2026-11-23T10:07:00Z', {
      table: 'public.spiky',
      anomaly_window: 5,
      anomaly_threshold: 90,
    });
    expect(config.rows).toEqual([]);
  });

  test('a misconfigured column is a 400 naming the config key', async () => {
    const missing = await get('/v1/analytics/daily-orders', { price_column: 'prize' });
    expect(missing.status).toBe(400);
    const body = (await missing.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ANALYTICS_CONFIG');
    expect(body.error.message).toContain('analytics.price_column = "prize"');
    expect(body.error.message).toContain('order_date');
    const wrongType = await get('/v1/analytics/revenue', { time_column: 'status' });
    expect(wrongType.status).toBe(400);
    expect(((await wrongType.json()) as { error: { message: string } }).error.message).toContain('analytics.time_column = "status": column is VARCHAR');
    const noTable = await get('/v1/analytics/top-customers', { table: 'public.nope' });
    expect(((await noTable.json()) as { error: { message: string } }).error.message).toContain('analytics.table = "public.nope"');
  });

  test('bad parameters are 400 with what to fix', async () => {
    for (const [path, text] of [
      ['/v1/analytics/revenue?bucket=5m', 'bucket'],
      ['/v1/analytics/daily-orders?from=yesterday', '"from" must be an ISO date'],
      ['/v1/analytics/top-customers?limit=0', '"limit" must be >= 1'],
      ['/v1/analytics/daily-orders?from=2026-11-22&to=2026-11-20', 'must be before'],
      ['/v1/analytics/revenue?bucket=1m&from=2000-01-01&to=2026-01-01', 'narrow'],
    ] as const) {
      const res = await get(path);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(text);
    }
  });
});
