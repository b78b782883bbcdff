import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, errorMessage } from '../errors.ts';
import { QueryError } from '../warehouse/query.ts';
import { AnalyticsConfigError, analyticsRoutes } from './analytics/index.ts';
import dashboardApp from './dashboard/app.js' with { type: 'text' };
import dashboardCharts from './dashboard/charts.js' with { type: 'text' };
import dashboardAsset from './dashboard/index.html' with { type: 'text' };
import { bearerAuth } from './middleware/auth.ts';
import { observeRequests } from './middleware/observe.ts';
import { openApiDocument } from './openapi.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { queryRoutes } from './routes/query.ts';
import { tableRoutes } from './routes/tables.ts';
import { type ApiDeps, errorBody } from './types.ts';

// Imported as text (embedded in the compiled binary); Bun's types describe .html imports as bundles.
const dashboardHtml = dashboardAsset as unknown as string;

const QUERY_STATUS: Record<string, ContentfulStatusCode> = {
  QUERY_INVALID: 400,
  QUERY_NOT_READ_ONLY: 400,
  QUERY_TIMEOUT: 504,
};

/** Builds the Hono app: health, metrics, query, tables, analytics, dashboard; bearer tokens when configured. */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  const tokens = deps.tokens ?? [];

  let routes: Set<string> | null = null;
  app.use('*', observeRequests(deps.metrics, deps.alerts, () => (routes ??= new Set(app.routes.map((r) => r.path)))));
  const limit = deps.bodyLimitBytes ?? 1_048_576;
  app.use(
    '*',
    bodyLimit({
      maxSize: limit,
      onError: (c) => c.json(errorBody('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes ([api] body_limit_bytes)`), 413),
    }),
  );
  app.use('/v1/*', bearerAuth(tokens));

  app.route('/', healthRoutes(deps));
  app.route('/', metricsRoutes(deps.metrics));
  app.route('/', queryRoutes(deps));
  app.route('/', tableRoutes(deps));
  app.route('/', analyticsRoutes(deps));
  app.post('/v1/admin/archive', async (c) => {
    if (!deps.archive) return c.json(errorBody('NOT_AVAILABLE', 'tiering is not running in this process'), 503);
    return c.json(await deps.archive());
  });
  app.post('/v1/admin/resnapshot', async (c) => {
    if (!deps.resnapshot) return c.json(errorBody('NOT_AVAILABLE', 'this instance does not read the source ([source] enabled = false)'), 503);
    const body = (await c.req.json().catch(() => null)) as { table?: unknown } | null;
    const table = body?.table;
    if (typeof table !== 'string' || !/^[^.]+\.[^.]+$/.test(table)) {
      return c.json(errorBody('BAD_REQUEST', 'body must be {"table": "schema.table"}'), 400);
    }
    try {
      deps.resnapshot(table);
    } catch (e) {
      const code = e instanceof AppError ? e.code : 'INTERNAL';
      const status = code === 'UNKNOWN_TABLE' ? 404 : code === 'NOT_STREAMING' ? 409 : 500;
      return c.json(errorBody(code, errorMessage(e)), status);
    }
    return c.json({ table, status: 'copying' }, 202);
  });
  let openapi: Record<string, unknown> | null = null;
  app.get('/openapi.json', (c) => c.json((openapi ??= openApiDocument(deps.version))));
  app.get('/', (c) => c.html(dashboardHtml));
  const script = { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' };
  app.get('/dashboard/app.js', (c) => c.body(dashboardApp, 200, script));
  app.get('/dashboard/charts.js', (c) => c.body(dashboardCharts, 200, script));

  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404));
  app.onError((e, c) => {
    if (e instanceof AnalyticsConfigError) return c.json(errorBody(e.code, e.message), 400);
    if (e instanceof QueryError) return c.json(errorBody(e.code, e.message), QUERY_STATUS[e.code] ?? 400);
    const code = e instanceof AppError ? e.code : 'INTERNAL';
    return c.json(errorBody(code, e.message), 500);
  });
  return app;
}
