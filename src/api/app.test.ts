import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQueryEngine, lockDownInstance } from '../warehouse/query.ts';
import { createApi } from './index.ts';
import type { Readiness } from './types.ts';

let dir: string;
let instance: DuckDBInstance;
let ready: Record<string, Readiness> = { source: { ready: true }, warehouse: { ready: true } };
const TOKEN_READ = 'read-token-0123456789';
const TOKEN_ADMIN = 'admin-token-0123456789';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-api-'));
  instance = await DuckDBInstance.create(join(dir, 'w.duckdb'));
  const w = await instance.connect();
  await w.run(`SET GLOBAL TimeZone = 'UTC';
    CREATE SCHEMA public; CREATE SCHEMA history;
    CREATE TABLE public.orders (order_id BIGINT, price DECIMAL(10,2), status VARCHAR, order_date TIMESTAMPTZ, big UBIGINT);
    INSERT INTO public.orders VALUES (1, 10.50, 'paid', '2026-11-23 23:03:16.123456+00', 18446744073709551615),
                                     (2, 0.10, 'pending, "rush"', '2026-11-24 00:00:00+00', 1);
    CREATE TABLE history.orders AS SELECT *, 'I' AS _op FROM public.orders;`);
  await lockDownInstance(instance, { allowedDirectories: [join(dir, 'warm')] });
  // The pipeline's own connection can still write after the lock-down.
  await w.run("INSERT INTO public.orders VALUES (3, 3.00, 'shipped', '2026-11-24 01:00:00+00', 2)");
  w.closeSync();
});

afterAll(() => {
  instance?.closeSync();
  rmSync(dir, { recursive: true, force: true });
});

function app(tokens: { token: string; scope: 'read' | 'admin' }[] = []) {
  const engine = createQueryEngine({ instance, maxRows: 1000 });
  return createApi({
    query: engine,
    tables: async () => [{ name: 'public.orders', rowCount: 3, columns: [] }],
    readiness: () => ready,
    version: 'test',
    tokens,
  });
}

function post(body: unknown, headers: Record<string, string> = {}) {
  return app().request('/v1/query', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('POST /v1/query', () => {
  test('returns columns, exact values and row count; public tables resolve unqualified', async () => {
    const res = await post({ sql: 'select order_id, price, order_date, big, status from orders where order_id = $1', params: [1] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { columns: unknown; rows: unknown[][]; rowCount: number; elapsedMs: number };
    expect(body.columns).toEqual([
      { name: 'order_id', type: 'BIGINT' },
      { name: 'price', type: 'DECIMAL(10,2)' },
      { name: 'order_date', type: 'TIMESTAMP WITH TIME ZONE' },
      { name: 'big', type: 'UBIGINT' },
      { name: 'status', type: 'VARCHAR' },
    ]);
    expect(body.rows).toEqual([[1, '10.50', '2026-11-23 23:03:16.123456+00', '18446744073709551615', 'paid']]);
    expect(body.rowCount).toBe(1);
    expect(typeof body.elapsedMs).toBe('number');
    const qualified = await post({ sql: 'select count(*) as n from public.orders' });
    expect(((await qualified.json()) as { rows: unknown }).rows).toEqual([[3]]);
    const history = await post({ sql: 'select count(*) from history.orders' });
    expect(((await history.json()) as { rows: unknown }).rows).toEqual([[2]]);
  });

  test('streams NDJSON and CSV by Accept header', async () => {
    const nd = await post({ sql: 'select order_id, status from orders order by 1' }, { accept: 'application/x-ndjson' });
    expect(nd.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await nd.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ columns: [{ name: 'order_id', type: 'BIGINT' }, { name: 'status', type: 'VARCHAR' }] });
    expect(lines.slice(1)).toEqual([[1, 'paid'], [2, 'pending, "rush"'], [3, 'shipped']]);
    const csv = await post({ sql: 'select order_id, status from orders order by 1' }, { accept: 'text/csv' });
    expect(await csv.text()).toBe('order_id,status\n1,paid\n2,"pending, ""rush"""\n3,shipped\n');
  });

  test.each([
    ['insert into orders values (9, 1, \'x\', now(), 1)', 'INSERT'],
    ['drop table orders', 'DROP'],
    ["attach '/tmp/x.duckdb' as x", 'ATTACH'],
    // Into the allowed folder: file access would succeed, the statement type check refuses it.
    ["copy orders to '__WARM__/x.parquet'", 'COPY'],
    ["set threads = 1", 'SET'],
    ['select 1; drop table orders', '2 statements'],
    ['create table x as select 1', 'CREATE'],
  ])('refuses %p as not read-only', async (sql, what) => {
    const res = await post({ sql: sql.replace('__WARM__', join(dir, 'warm')) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('QUERY_NOT_READ_ONLY');
    expect(body.error.message).toContain(what);
  });

  test('cannot read files outside the warehouse', async () => {
    for (const sql of ["select * from read_csv('/etc/passwd')", "select * from read_text('/etc/hostname')", "select * from glob('/etc/*')"]) {
      const res = await post({ sql });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain('disabled by configuration');
    }
    const rows = await post({ sql: 'select count(*) from orders' });
    expect(((await rows.json()) as { rows: unknown }).rows).toEqual([[3]]);
  });

  test('bad SQL and bad bodies are 400 with a message that says what is wrong', async () => {
    const bad = await post({ sql: 'selec 1' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('syntax error');
    const missing = await post({ sql: 'select * from nope' });
    expect(missing.status).toBe(400);
    const noSql = await post({ query: 'select 1' });
    expect(noSql.status).toBe(400);
    expect(((await noSql.json()) as { error: { message: string } }).error.message).toContain('"sql"');
    const params = await post({ sql: 'select $1, $2', params: [1] });
    expect(((await params.json()) as { error: { message: string } }).error.message).toContain('2 parameters');
  });
});

describe('auth, health, tables', () => {
  test('tokens guard /v1 but not health', async () => {
    const a = app([{ token: TOKEN_READ, scope: 'read' }, { token: TOKEN_ADMIN, scope: 'admin' }]);
    expect((await a.request('/v1/tables')).status).toBe(401);
    expect((await a.request('/v1/tables', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await a.request('/v1/tables', { headers: { authorization: `Bearer ${TOKEN_READ}` } })).status).toBe(200);
    expect((await a.request('/v1/admin/archive', { method: 'POST', headers: { authorization: `Bearer ${TOKEN_READ}` } })).status).toBe(403);
    expect((await a.request('/v1/admin/resnapshot', { method: 'POST', headers: { authorization: `Bearer ${TOKEN_READ}` } })).status).toBe(403);
    const admin = { method: 'POST', headers: { authorization: `Bearer ${TOKEN_ADMIN}` }, body: '{"table":"public.orders"}' };
    expect((await a.request('/v1/admin/resnapshot', admin)).status).toBe(503); // no source in this process
    expect((await a.request('/healthz')).status).toBe(200);
    expect((await a.request('/readyz')).status).toBe(200);
  });

  test('/readyz is 503 with per-component detail when a component is not ready', async () => {
    ready = { source: { ready: false, detail: 'retrying: connection refused' }, warehouse: { ready: true } };
    const res = await app().request('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, status: 'unavailable', reasons: [], components: ready, alerts: [] });
    ready = { source: { ready: true }, warehouse: { ready: true } };
  });

  test('GET /v1/tables and the dashboard', async () => {
    const res = await app().request('/v1/tables');
    expect(await res.json()).toEqual({ tables: [{ name: 'public.orders', rowCount: 3, columns: [] }] });
    const page = await app().request('/');
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<title>ducktail</title>');
  });
});
