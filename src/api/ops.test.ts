import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { createMetrics } from '../metrics/index.ts';
import { createQueryEngine } from '../warehouse/query.ts';
import { checkListen, createAlerts, createApi } from './index.ts';
import { matchToken } from './middleware/auth.ts';

let dir: string;
let instance: DuckDBInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-ops-'));
  instance = await DuckDBInstance.create(join(dir, 'w.duckdb'));
  const c = await instance.connect();
  await c.run('CREATE SCHEMA public');
  c.closeSync();
});
afterAll(() => {
  instance?.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

function build(
  opts: {
    lag?: number;
    consumer?: number | null;
    apply?: { seconds: number; at: number } | null;
    tokens?: { token: string; scope: 'read' | 'admin' }[];
    readiness?: Record<string, { ready: boolean; detail?: string; degraded?: boolean }>;
  } = {},
) {
  const metrics = createMetrics();
  const alerts = createAlerts(
    { replication_lag_s: 30, consumer_lag_messages: 1000, batch_apply_s: 5, query_s: 2 },
    { replicationLagSeconds: () => opts.lag ?? 0, consumerLagMessages: () => opts.consumer ?? null, lastBatchApply: () => opts.apply ?? null },
    metrics,
  );
  metrics.gauge('replication_lag_seconds', { help: 'lag', collect: (g) => g.set(opts.lag ?? 0) });
  const app = createApi({
    query: createQueryEngine({ instance }),
    tables: async () => [],
    readiness: () => opts.readiness ?? { source: { ready: true } },
    version: 'test',
    metrics,
    alerts,
    bodyLimitBytes: 2048,
    tokens: opts.tokens,
  });
  return { app, metrics, alerts };
}

const promtool = spawnSync('promtool', ['--version']).status === 0;

describe('GET /metrics', () => {
  test('Prometheus text with ducktail_ families, request counts by endpoint and status, errors by code', async () => {
    const { app } = build({ lag: 12.5 });
    await app.request('/v1/query', { method: 'POST', body: JSON.stringify({ sql: 'select 1' }) });
    await app.request('/v1/query', { method: 'POST', body: JSON.stringify({ sql: 'delete from x' }) });
    await app.request('/nope');
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('ducktail_replication_lag_seconds 12.5');
    expect(text).toContain('ducktail_api_requests_total{endpoint="/v1/query",method="POST",status="200"} 1');
    expect(text).toContain('ducktail_api_requests_total{endpoint="/v1/query",method="POST",status="400"} 1');
    expect(text).toContain('ducktail_api_requests_total{endpoint="unmatched",method="GET",status="404"} 1');
    expect(text).toContain('ducktail_errors_total{code="NOT_FOUND"} 1');
    expect(text).toMatch(/ducktail_errors_total\{code="QUERY_(NOT_READ_ONLY|INVALID)"\} 1/);
    expect(text).toContain('ducktail_api_request_duration_seconds_bucket{le="0.005",endpoint="/v1/query",status="200"}');
    expect(text).toContain('ducktail_alert_threshold{alert="replication_lag"} 30');
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^ducktail_/);
    if (promtool) {
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text });
      // promtool's lint only warns (exit 0) or fails on a parse error (exit 1).
      expect(r.status, r.stderr.toString()).toBe(0);
    }
  });
});

describe('alerts', () => {
  test('thresholds crossed make /readyz degraded with the reason and set ducktail_alert_firing', async () => {
    const { app } = build({ lag: 31, consumer: 1001, apply: { seconds: 6, at: Date.now() } });
    const res = await app.request('/readyz');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; reasons: string[] };
    expect(body.status).toBe('degraded');
    expect(body.reasons).toEqual([
      'replication lag 31.0 s > 30 s (alerts.replication_lag_s)',
      'Kafka consumer lag 1001 messages > 1000 (alerts.consumer_lag_messages)',
      'a batch took 6.00 s to apply > 5 s (alerts.batch_apply_s)',
    ]);
    const text = await (await app.request('/metrics')).text();
    expect(text).toContain('ducktail_alert_firing{alert="replication_lag"} 1');
    expect(text).toContain('ducktail_alert_firing{alert="consumer_lag"} 1');
    expect(text).toContain('ducktail_alert_firing{alert="slow_query"} 0');
  });

  test('a degraded component (an archive pass that left work) makes /readyz degraded, not 503; one not ready makes it 503', async () => {
    const tiering = { ready: true, degraded: true, detail: 'COLD_UNREACHABLE: uploading to s3://b/x failed' };
    const degraded = build({ readiness: { source: { ready: true }, tiering } }).app;
    const res = await degraded.request('/readyz');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; reasons: string[] };
    expect([body.status, body.reasons]).toEqual(['degraded', ['tiering: COLD_UNREACHABLE: uploading to s3://b/x failed']]);
    const down = build({ readiness: { source: { ready: false, detail: 'connecting' }, tiering } }).app;
    expect((await down.request('/readyz')).status).toBe(503);
  });

  test('below the thresholds /readyz is ok; an old slow apply no longer fires; a slow query does', async () => {
    const { app, alerts } = build({ lag: 30, consumer: 1000, apply: { seconds: 9, at: Date.now() - 10 * 60_000 } });
    expect(((await (await app.request('/readyz')).json()) as { status: string }).status).toBe('ok');
    alerts.observeQuery(2.5, '/v1/analytics/revenue');
    const body = (await (await app.request('/readyz')).json()) as { status: string; reasons: string[] };
    expect(body.status).toBe('degraded');
    expect(body.reasons).toEqual(['/v1/analytics/revenue took 2.50 s > 2 s in the last 5 min (alerts.query_s)']);
  });
});

describe('security', () => {
  test('token match is by digest and finds the right token and scope', () => {
    const tokens = [
      { token: 'read-token-0123456789', scope: 'read' as const },
      { token: 'admin-token-0123456789', scope: 'admin' as const },
    ];
    expect(matchToken(tokens, 'admin-token-0123456789')?.scope).toBe('admin');
    expect(matchToken(tokens, 'read-token-0123456789')?.scope).toBe('read');
    expect(matchToken(tokens, 'read-token-012345678')).toBeUndefined();
    expect(matchToken(tokens, '')).toBeUndefined();
  });

  test('a body over the limit is 413 naming the key', async () => {
    const { app } = build();
    const res = await app.request('/v1/query', { method: 'POST', body: JSON.stringify({ sql: `select '${'x'.repeat(4000)}'` }) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('body_limit_bytes');
  });

  test('no tokens: loopback is fine, any other address is refused unless allowed explicitly', () => {
    expect(() => checkListen('127.0.0.1:8080', false, false)).not.toThrow();
    expect(() => checkListen('[::1]:8080', false, false)).not.toThrow();
    expect(() => checkListen('localhost:8080', false, false)).not.toThrow();
    expect(() => checkListen('0.0.0.0:8080', false, false)).toThrow(ConfigError);
    expect(() => checkListen('0.0.0.0:8080', false, false)).toThrow('api.allow_unauthenticated_remote');
    expect(() => checkListen('[::]:8080', false, false)).toThrow(ConfigError);
    expect(() => checkListen('0.0.0.0:8080', true, false)).not.toThrow();
    expect(() => checkListen('0.0.0.0:8080', false, true)).not.toThrow();
  });
});

test('promtool is present where the CI installed it', () => {
  if (process.env.CI) expect(promtool).toBe(true);
  writeFileSync(join(dir, 'ok'), '');
});
