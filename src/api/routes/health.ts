import { Hono } from 'hono';
import type { ApiDeps } from '../types.ts';

/** GET /healthz (liveness), GET /readyz (200 when every component is ready, else 503 with detail). */
export function healthRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok', version: deps.version }));
  app.get('/readyz', (c) => {
    const components = deps.readiness();
    const ready = Object.values(components).every((r) => r.ready);
    return c.json({ ready, components }, ready ? 200 : 503);
  });
  return app;
}
