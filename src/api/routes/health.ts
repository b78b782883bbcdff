import { Hono } from 'hono';
import type { ApiDeps } from '../types.ts';

/**
 * GET /healthz (liveness); GET /readyz: 503 when a component is not ready, else 200 with
 * status "ok", or "degraded" and the reasons when an [alerts] threshold is crossed or a component
 * is degraded (ready, serving, but e.g. its last archive pass left work for the next).
 */
export function healthRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok', version: deps.version }));
  app.get('/readyz', (c) => {
    const components = deps.readiness();
    const ready = Object.values(components).every((r) => r.ready);
    const alerts = deps.alerts?.evaluate() ?? [];
    const reasons = [
      ...alerts.filter((a) => a.firing).map((a) => a.reason),
      ...Object.entries(components).flatMap(([name, r]) => (r.ready && r.degraded ? [`${name}: ${r.detail ?? 'degraded'}`] : [])),
    ];
    const status = !ready ? 'unavailable' : reasons.length > 0 ? 'degraded' : 'ok';
    return c.json({ ready, status, reasons, components, alerts }, ready ? 200 : 503);
  });
  return app;
}
