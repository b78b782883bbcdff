import { Hono } from 'hono';
import type { Metrics } from '../../metrics/index.ts';
import { errorBody } from '../types.ts';

/** GET /metrics: the Prometheus text exposition of every registered family. */
export function metricsRoutes(metrics: Metrics | undefined): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    if (!metrics) return c.json(errorBody('NOT_AVAILABLE', 'metrics are not collected in this process'), 503);
    const { text, contentType } = await metrics.render();
    return c.body(text, 200, { 'content-type': contentType });
  });
  return app;
}
