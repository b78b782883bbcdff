import { Hono } from 'hono';
import * as v from 'valibot';
import type { QueryEngine, QueryResult } from '../../warehouse/query.ts';
import { errorBody } from '../types.ts';
import { createResultCache } from './cache.ts';
import { AnalyticsQuery, type AnalyticsName, BUCKET_MS, BUCKET_UNIT, parseInstant } from './schemas.ts';
import { type AnalyticsConfig, render, type ResolvedColumns, resolveColumns, TEMPLATES } from './sql.ts';

export { AnalyticsQuery } from './schemas.ts';
export { type AnalyticsConfig, AnalyticsConfigError } from './sql.ts';

const DAY_MS = 86_400_000;
const MAX_BUCKETS = 100_000;
const COLUMNS_TTL_MS = 5_000;

/** The [analytics] defaults: the demo shop's orders table. */
export const DEMO_ANALYTICS: AnalyticsConfig = {
  table: 'public.orders',
  time_column: 'order_date',
  price_column: 'price',
  quantity_column: 'quantity',
  status_column: 'status',
  customer_column: 'customer_id',
  cancelled_status: 'cancelled',
  anomaly_bucket: '1m',
  anomaly_window: 30,
  anomaly_threshold: 3,
};

const iso = (ms: number) => new Date(ms).toISOString();
const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step;

/** GET /v1/analytics/{daily-orders,revenue,top-customers,customer-activity,anomalies}, in the /v1/query shape. */
export function analyticsRoutes(deps: { query: QueryEngine; analytics?: AnalyticsConfig; now?: () => number; position?: () => number }): Hono {
  const cfg = deps.analytics ?? DEMO_ANALYTICS;
  const now = deps.now ?? Date.now;
  const app = new Hono();
  // Identical requests at the same warehouse position share one query (see cache.ts); no position, no cache.
  const position = deps.position;
  const cache = position ? createResultCache<Omit<QueryResult, 'truncated'>>({ position }) : null;
  const run = (sql: string, params: unknown[], signal: AbortSignal) =>
    deps.query.query(sql, params, signal).then(({ truncated: _, ...result }) => result);
  // The column check is one catalog query; reuse its answer briefly (a schema change shows within COLUMNS_TTL_MS).
  let resolved: { at: number; cols: Promise<ResolvedColumns> } | null = null;
  const columns = () => {
    if (!resolved || now() - resolved.at > COLUMNS_TTL_MS) {
      const cols = resolveColumns(deps.query, cfg);
      resolved = { at: now(), cols };
      cols.catch(() => (resolved = null));
    }
    return resolved.cols;
  };

  function range(q: { from?: string; to?: string }, step: number, defaultBuckets: number): [number, number] {
    const to = q.to ? parseInstant(q.to, true) : floorTo(now(), step) + step;
    const from = q.from ? parseInstant(q.from, false) : to - defaultBuckets * step;
    return [from, to];
  }

  for (const name of Object.keys(AnalyticsQuery) as AnalyticsName[]) {
    app.get(`/v1/analytics/${name}`, async (c) => {
      const parsed = v.safeParse(AnalyticsQuery[name], c.req.query());
      if (!parsed.success) {
        return c.json(errorBody('BAD_REQUEST', parsed.issues.map((i) => i.message).join('; ')), 400);
      }
      const q = parsed.output as { from?: string; to?: string; bucket?: '1m' | '1h' | '1d'; limit?: number; window?: number; threshold?: number };
      const cols = await columns();
      const bucket = q.bucket ?? (name === 'anomalies' ? cfg.anomaly_bucket : name === 'revenue' ? '1m' : '1d');
      const step = BUCKET_MS[bucket];
      const [from, to] = range(q, step, name === 'revenue' || name === 'anomalies' ? (bucket === '1m' ? 60 : bucket === '1h' ? 48 : 30) : 30);
      if (!(from < to)) return c.json(errorBody('BAD_REQUEST', `"from" (${iso(from)}) must be before "to" (${iso(to)})`), 400);
      const window = q.window ?? cfg.anomaly_window;
      const start = name === 'anomalies' ? from - window * step : from;
      if ((to - start) / (step === DAY_MS && name !== 'revenue' && name !== 'anomalies' ? DAY_MS : step) > MAX_BUCKETS) {
        return c.json(errorBody('BAD_REQUEST', `the range holds more than ${MAX_BUCKETS} ${bucket} buckets; narrow "from"/"to" or use a wider bucket`), 400);
      }
      const sql = render(TEMPLATES[name], { ...cols, unit: BUCKET_UNIT[bucket], window });
      const params: unknown[] = [iso(start), iso(to), cfg.cancelled_status];
      if (name === 'top-customers') params.push(q.limit ?? 10);
      if (name === 'anomalies') params.push(iso(from), q.threshold ?? cfg.anomaly_threshold);
      const used = Math.max(0, ...[...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))); // $1..$n, positional
      const args = params.slice(0, used);
      const result = cache
        ? await cache.get(JSON.stringify([sql, args]), (signal) => run(sql, args, signal), c.req.raw.signal)
        : await run(sql, args, c.req.raw.signal);
      return c.json({ ...result, from: iso(from), to: iso(to), ...(name === 'revenue' || name === 'anomalies' ? { bucket } : {}) });
    });
  }
  return app;
}
