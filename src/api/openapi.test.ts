import { expect, test } from 'bun:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createQueryEngine } from '../warehouse/query.ts';
import { createApi } from './index.ts';

test('GET /openapi.json is a valid OpenAPI 3.1 document describing every endpoint from the request schemas', async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const app = createApi({ query: createQueryEngine({ instance }), tables: async () => [], readiness: () => ({}), version: '9.9.9', tokens: [] });
  const res = await app.request('/openapi.json');
  expect(res.status).toBe(200);
  const doc = (await res.json()) as { openapi: string; info: { version: string }; paths: Record<string, Record<string, { parameters?: { name: string; schema: { enum?: string[]; pattern?: string } }[]; requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> } }>> };
  const result = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0]);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(doc.openapi).toBe('3.1.0');
  expect(doc.info.version).toBe('9.9.9');

  // Every route the app serves (bar the dashboard's scripts) is described, with its method.
  const served = app.routes.filter((r) => r.method !== 'ALL' && !r.path.startsWith('/dashboard/'));
  for (const r of served) expect(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();

  // The request parts come from the valibot schemas that validate them.
  const body = doc.paths['/v1/query']!.post!.requestBody!.content['application/json']!.schema;
  expect(Object.keys(body.properties)).toEqual(['sql', 'params']);
  expect(body.required).toEqual(['sql']);
  const revenue = doc.paths['/v1/analytics/revenue']!.get!.parameters!;
  expect(revenue.map((p) => p.name)).toEqual(['from', 'to', 'bucket']);
  expect(revenue.find((p) => p.name === 'bucket')!.schema.enum).toEqual(['1m', '1h', '1d']);
  expect(doc.paths['/v1/analytics/top-customers']!.get!.parameters!.find((p) => p.name === 'limit')!.schema.pattern).toBe('^\\d+$');
  instance.closeSync();
});
