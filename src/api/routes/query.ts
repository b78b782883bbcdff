import { Hono } from 'hono';
import * as v from 'valibot';
import type { QueryColumn } from '../../warehouse/query.ts';
import { type ApiDeps, errorBody } from '../types.ts';

/** The body of POST /v1/query (validates requests and describes them in /openapi.json). */
export const QueryBody = v.object({
  sql: v.pipe(v.string('"sql" must be a string'), v.minLength(1, '"sql" must not be empty')),
  params: v.optional(v.array(v.union([v.string(), v.number(), v.boolean(), v.null()]), '"params" must be an array of strings, numbers, booleans or null'), []),
});

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** POST /v1/query: read-only SQL; JSON by default, NDJSON or CSV streamed by Accept. */
export function queryRoutes(deps: ApiDeps): Hono {
  const app = new Hono();
  app.post('/v1/query', async (c) => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return c.json(errorBody('BAD_REQUEST', 'the body must be JSON: {"sql": "select ...", "params": [...]}'), 400);
    }
    const parsed = v.safeParse(QueryBody, raw);
    if (!parsed.success) {
      const msg = parsed.issues.map((i) => i.message).join('; ');
      return c.json(errorBody('BAD_REQUEST', `${msg}. Expected {"sql": "select ...", "params": [...]}`), 400);
    }
    const { sql, params } = parsed.output;
    const accept = c.req.header('accept') ?? '';
    const signal = c.req.raw.signal;
    if (accept.includes('application/x-ndjson') || accept.includes('text/csv')) {
      const csv = !accept.includes('application/x-ndjson');
      const iterator = deps.query.stream(sql, params, signal);
      const first = await iterator.next(); // errors (bad SQL, not read-only) surface before the 200
      const columns = first.value as QueryColumn[];
      const enc = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(
            enc.encode(csv ? `${columns.map((col) => csvCell(col.name)).join(',')}\n` : `${JSON.stringify({ columns })}\n`),
          );
        },
        async pull(controller) {
          try {
            const next = await iterator.next();
            if (next.done) return controller.close();
            const rows = next.value as unknown[][];
            const text = rows.map((r) => (csv ? r.map(csvCell).join(',') : JSON.stringify(r))).join('\n');
            controller.enqueue(enc.encode(`${text}\n`));
          } catch (e) {
            controller.error(e);
          }
        },
        async cancel() {
          await iterator.return(undefined);
        },
      });
      return new Response(body, {
        headers: { 'content-type': csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson' },
      });
    }
    return c.json(await deps.query.query(sql, params, signal));
  });
  return app;
}
