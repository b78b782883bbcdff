import { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { AnalyticsQuery } from './analytics/schemas.ts';
import { QueryBody } from './routes/query.ts';

const json = (schema: v.GenericSchema) => {
  const { $schema: _, ...rest } = toJsonSchema(schema, { errorMode: 'ignore', typeMode: 'input' }) as Record<string, unknown>;
  return rest;
};

/** Responses, described with valibot like the requests (documentation only: the server builds them). */
const QueryResult = v.object({
  columns: v.array(v.object({ name: v.string(), type: v.pipe(v.string(), v.description('DuckDB type, e.g. BIGINT, DECIMAL(38,2)')) })),
  rows: v.pipe(v.array(v.array(v.unknown())), v.description('64-bit integers that fit a double are numbers, larger ones and DECIMALs are strings')),
  rowCount: v.number(),
  elapsedMs: v.number(),
});
const ErrorBody = v.object({ error: v.object({ code: v.pipe(v.string(), v.description('stable code, e.g. QUERY_INVALID, ANALYTICS_CONFIG')), message: v.string() }) });

const ANALYTICS_TEXT: Record<keyof typeof AnalyticsQuery, string> = {
  'daily-orders': 'Per UTC day: orders, cancelled, revenue (price x quantity, cancelled excluded), average order value. Default: the last 30 days.',
  revenue: 'Revenue and orders per bucket (UTC), every bucket present, empty ones 0. Default: the last 60 minutes / 48 hours / 30 days.',
  'top-customers': 'Customers by revenue in the range (cancelled excluded), best first.',
  'customer-activity': 'Per UTC day: active, new (first order ever) and returning customers, orders, orders per customer.',
  'orders-by-status': 'Orders and their amount per status in the range (default: the last 30 days).',
  anomalies: 'Buckets whose revenue or order count has |rolling z-score| >= threshold, each with its score.',
};

const error = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const ok = (description: string, schema: Record<string, unknown> = { type: 'object' }, type = 'application/json') => ({
  description,
  content: { [type]: { schema } },
});

/** Builds the OpenAPI 3.1 document of the API from the valibot schemas that validate its requests. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, unknown> = {
    '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: ok('alive') } } },
    '/readyz': {
      get: {
        summary: 'Readiness: 503 when a component is not ready; status "degraded" with reasons when an [alerts] threshold is crossed or a component is degraded',
        security: [],
        responses: { 200: ok('ready (ok or degraded)'), 503: ok('not ready') },
      },
    },
    '/metrics': { get: { summary: 'Prometheus text exposition (ducktail_* families)', security: [], responses: { 200: ok('metrics', { type: 'string' }, 'text/plain') } } },
    '/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: ok('OpenAPI 3.1') } } },
    '/': { get: { summary: 'The dashboard (HTML)', security: [], responses: { 200: ok('page', { type: 'string' }, 'text/html') } } },
    '/v1/query': {
      post: {
        summary: 'One read-only SELECT over the warehouse; JSON by default, NDJSON or CSV streamed by Accept',
        requestBody: { required: true, content: { 'application/json': { schema: json(QueryBody) } } },
        responses: {
          200: {
            description: 'the result',
            content: {
              'application/json': { schema: { $ref: '#/components/schemas/QueryResult' } },
              'application/x-ndjson': { schema: { type: 'string' } },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          400: error('invalid body, SQL not read-only or invalid'),
          401: error('token missing or unknown'),
          413: error('body over [api] body_limit_bytes'),
          504: error('ran longer than [api] query_timeout_ms'),
        },
      },
    },
    '/v1/tables': { get: { summary: 'Mirrored tables with row counts and columns', responses: { 200: ok('tables'), 401: error('token missing or unknown') } } },
    '/v1/status': { get: { summary: 'Pipeline state: source, bus, warehouse, tiering', responses: { 200: ok('status'), 401: error('token missing or unknown') } } },
    '/v1/admin/archive': {
      post: { summary: 'Run one tiering pass now (scope "admin")', responses: { 200: ok('what moved'), 403: error('token lacks scope "admin"'), 503: error('tiering not running') } },
    },
    '/v1/admin/resnapshot': {
      post: {
        summary: 'Copy one table again, body {"table": "schema.table"} (scope "admin")',
        responses: {
          202: ok('the copy is under way (see /v1/status source.snapshot)'),
          400: error('body is not {"table": "schema.table"}'),
          403: error('token lacks scope "admin"'),
          404: error('table not replicated'),
          409: error('source not streaming yet'),
          503: error('this instance does not read the source'),
        },
      },
    },
  };
  for (const [name, schema] of Object.entries(AnalyticsQuery) as [keyof typeof AnalyticsQuery, v.GenericSchema][]) {
    const s = json(schema) as { properties: Record<string, { description?: string }> };
    paths[`/v1/analytics/${name}`] = {
      get: {
        summary: ANALYTICS_TEXT[name],
        parameters: Object.entries(s.properties).map(([param, p]) => ({ name: param, in: 'query', required: false, description: p.description, schema: p })),
        responses: {
          200: ok('rows in the /v1/query shape, with the range (and bucket) used', { $ref: '#/components/schemas/QueryResult' }),
          400: error('a bad parameter, or a misconfigured [analytics] key (code ANALYTICS_CONFIG, naming the key)'),
          401: error('token missing or unknown'),
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'ducktail', version, description: 'PostgreSQL-to-analytics appliance: read-only SQL, business analytics and pipeline state.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token from [api] tokens (only when tokens are configured)' } },
      schemas: { QueryResult: json(QueryResult), Error: json(ErrorBody) },
    },
  };
}
