import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { createApi } from '../../src/api/index.ts';
import { createInlineBus } from '../../src/bus/index.ts';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { startPipeline } from '../../src/pipeline.ts';
import { connectSql } from '../../src/source/index.ts';
import { createWarehouse, type Warehouse } from '../../src/warehouse/index.ts';
import { createQueryEngine } from '../../src/warehouse/query.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';

// The analytics endpoints, fed by the real pipeline from the demo schema, against the same GROUP BY in PostgreSQL.
let sql: Sql;
let dir: string;
let warehouse: Warehouse;
let stopPipeline: () => Promise<void>;
let api: ReturnType<typeof createApi>;
const FROM = '2026-11-20T00:00:00Z';
const TO = '2026-11-23T00:00:00Z';

beforeAll(async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_analytics_${process.pid}`);
  sql = connectSql(url, { max: 2 });
  await applyDemoSchema(sql);
  // 6000 orders spread over three UTC days (and a few outside), statuses and amounts varied deterministically.
  await sql.unsafe(`INSERT INTO orders (customer_id, product_id, price, quantity, status, order_date)
    SELECT 1 + (g * 7919) % 200, 1 + g % 50, round((1 + (g * 37) % 5000 / 100.0)::numeric, 2), 1 + g % 5,
           (ARRAY['pending', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + (g * 13) % 5],
           '2026-11-19 23:00:00+00'::timestamptz + ((g * 97) % 266400) * interval '1 second' + (g % 1000) * interval '1 microsecond'
      FROM generate_series(1, 6000) g`);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-analytics-it-'));
  warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'it_analytics' });
  const pipeline = startPipeline({
    warehouse,
    bus: createInlineBus(),
    source: { url, slot: 'it_analytics', publication: 'it_analytics', tables: [], batchRows: 2000, batchMs: 50, statusIntervalMs: 200, connectTimeoutS: 10 },
    log: () => {},
  });
  stopPipeline = pipeline.stop;
  api = createApi({ query: createQueryEngine({ instance: warehouse.instance }), tables: async () => [], readiness: () => ({}), version: 'test' });
  // Changes after the snapshot: cancellations, deletes, new orders.
  await waitFor(async () => pipeline.source?.status.phase === 'streaming', 60_000, 'streaming');
  await sql.unsafe(`UPDATE orders SET status = 'cancelled' WHERE order_id % 17 = 0;
    DELETE FROM orders WHERE order_id % 23 = 0;
    INSERT INTO orders (customer_id, product_id, price, quantity, status, order_date)
      SELECT 1 + g % 200, 1, 9.99, 2, 'paid', '2026-11-21 12:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 300) g`);
  const fingerprint = `SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'cancelled')::int AS c, sum(price * quantity)::text AS s FROM orders`;
  const [want] = await sql.unsafe(fingerprint);
  await waitFor(
    async () => {
      const res = await api.request('/v1/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: fingerprint.replaceAll('::int', '').replace('::text', '') }) });
      if (res.status !== 200) return false;
      const got = ((await res.json()) as { rows: unknown[][] }).rows[0]!;
      return got[0] === want!.n && got[1] === want!.c && String(got[2]) === want!.s;
    },
    60_000,
    'warehouse caught up',
  );
}, 120_000);

afterAll(async () => {
  await stopPipeline?.();
  await warehouse?.close();
  await sql?.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function endpoint(path: string): Promise<unknown[][]> {
  const res = await api.request(path);
  const body = (await res.json()) as { rows: unknown[][] };
  expect(res.status).toBe(200);
  return body.rows;
}

describe('analytics endpoints agree with PostgreSQL', () => {
  test('daily-orders', async () => {
    const pg = await sql.unsafe(
      `SELECT to_char((order_date AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, count(*)::int AS orders,
              count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
              coalesce(sum(price * quantity) FILTER (WHERE status <> 'cancelled'), 0)::text AS revenue,
              round(sum(price * quantity) FILTER (WHERE status <> 'cancelled') / count(*) FILTER (WHERE status <> 'cancelled'), 2)::text AS aov
         FROM orders WHERE order_date >= $1 AND order_date < $2 GROUP BY 1 ORDER BY 1`,
      [FROM, TO],
    );
    const rows = await endpoint(`/v1/analytics/daily-orders?from=${FROM}&to=${TO}`);
    expect(rows.length).toBe(3);
    expect(rows).toEqual(pg.map((r) => [r.day, r.orders, r.cancelled, r.revenue, r.aov]));
  });

  test('revenue per hour, empty hours as 0', async () => {
    const pg = await sql.unsafe(
      `SELECT to_char(b AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS bucket, count(o.*)::int AS orders, coalesce(sum(o.price * o.quantity), 0.00)::text AS revenue
         FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 hour', interval '1 hour') b
         LEFT JOIN orders o ON o.order_date >= b AND o.order_date < b + interval '1 hour' AND o.status <> 'cancelled'
        GROUP BY b ORDER BY b`,
      ['2026-11-19T20:00:00Z', '2026-11-23T04:00:00Z'],
    );
    const rows = await endpoint('/v1/analytics/revenue?bucket=1h&from=2026-11-19T20:00:00Z&to=2026-11-23T04:00:00Z');
    expect(rows.length).toBe(80);
    expect(rows.some((r) => r[1] === 0)).toBe(true);
    expect(rows).toEqual(pg.map((r) => [r.bucket, r.orders, r.revenue]));
  });

  test('top-customers', async () => {
    const pg = await sql.unsafe(
      `SELECT customer_id::int AS customer, count(*)::int AS orders, sum(price * quantity)::text AS revenue
         FROM orders WHERE order_date >= $1 AND order_date < $2 AND status <> 'cancelled'
        GROUP BY 1 ORDER BY sum(price * quantity) DESC, 1 LIMIT 15`,
      [FROM, TO],
    );
    const rows = await endpoint(`/v1/analytics/top-customers?from=${FROM}&to=${TO}&limit=15`);
    expect(rows.map((r) => r.slice(0, 3))).toEqual(pg.map((r) => [r.customer, r.orders, r.revenue]));
  });

  test('orders-by-status', async () => {
    const pg = await sql.unsafe(
      `SELECT status, count(*)::int AS orders, sum(price * quantity)::text AS amount FROM orders
        WHERE order_date >= $1 AND order_date < $2 GROUP BY 1 ORDER BY 2 DESC, 1`,
      [FROM, TO],
    );
    const rows = await endpoint(`/v1/analytics/orders-by-status?from=${FROM}&to=${TO}`);
    expect(rows.length).toBe(5);
    expect(rows).toEqual(pg.map((r) => [r.status, r.orders, r.amount]));
  });

  test('customer-activity', async () => {
    const pg = await sql.unsafe(
      `WITH o AS (SELECT customer_id, (order_date AT TIME ZONE 'UTC')::date AS day, order_date FROM orders WHERE status <> 'cancelled'),
            f AS (SELECT customer_id, min(day) AS first_day FROM o GROUP BY 1),
            d AS (SELECT day, customer_id, count(*) AS n FROM o WHERE order_date >= $1 AND order_date < $2 GROUP BY 1, 2)
       SELECT to_char(d.day, 'YYYY-MM-DD') AS day, count(*)::int AS active, count(*) FILTER (WHERE f.first_day = d.day)::int AS new,
              count(*) FILTER (WHERE f.first_day < d.day)::int AS returning, sum(n)::int AS orders, round(sum(n) / count(*), 2)::text AS per
         FROM d JOIN f USING (customer_id) GROUP BY d.day ORDER BY d.day`,
      [FROM, TO],
    );
    const rows = await endpoint(`/v1/analytics/customer-activity?from=${FROM}&to=${TO}`);
    expect(rows).toEqual(pg.map((r) => [r.day, r.active, r.new, r.returning, r.orders, r.per]));
  });
});
