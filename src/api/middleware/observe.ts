import type { MiddlewareHandler } from 'hono';
import type { Metrics } from '../../metrics/index.ts';
import type { Alerts } from '../alerts.ts';

/**
 * Counts every request and its duration by endpoint (the route's path, or "unmatched") and status, and
 * errors by their JSON `error.code`; feeds query durations to the slow-query alert.
 */
export function observeRequests(metrics: Metrics | undefined, alerts: Alerts | undefined, routes: () => Set<string>): MiddlewareHandler {
  const requests = metrics?.counter<'endpoint' | 'method' | 'status'>('api_requests_total', {
    help: 'HTTP requests by endpoint, method and status.',
    labelNames: ['endpoint', 'method', 'status'],
  });
  const duration = metrics?.histogram<'endpoint' | 'status'>('api_request_duration_seconds', {
    help: 'HTTP request duration (to the first byte of the response) by endpoint and status.',
    labelNames: ['endpoint', 'status'],
  });
  const errors = metrics?.counter<'code'>('errors_total', { help: 'Failed API requests by error code.', labelNames: ['code'] });
  return async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const endpoint = routes().has(c.req.path) ? c.req.path : 'unmatched';
    const status = String(c.res.status);
    requests?.inc({ endpoint, method: c.req.method, status });
    duration?.observe({ endpoint, status }, seconds);
    if (c.res.status >= 400 && errors) {
      const body = (await c.res.clone().json().catch(() => null)) as { error?: { code?: string } } | null;
      errors.inc({ code: body?.error?.code ?? `HTTP_${status}` });
    }
    if (endpoint === '/v1/query' || endpoint.startsWith('/v1/analytics/')) alerts?.observeQuery(seconds, endpoint);
  };
}
