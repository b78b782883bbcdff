import { Hono } from 'hono';
import type { ApiDeps } from '../types.ts';

/** GET /v1/tables: mirrored tables with row counts and columns; GET /v1/status: pipeline state. */
export function tableRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.get('/v1/tables', async (c) => c.json({ tables: await deps.tables() }));
  app.get('/v1/status', (c) => c.json({ version: deps.version, ...(deps.status?.() ?? {}), readiness: deps.readiness() }));
  return app;
}
