import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWarehouse, type Warehouse } from '../../warehouse/index.ts';
import { createQueryEngine, type QueryEngine } from '../../warehouse/query.ts';
import { createApi } from '../index.ts';
import { createResultCache } from './cache.ts';
import { DEMO_ANALYTICS } from './index.ts';

/** A computation the test finishes by hand. */
function gate<T>() {
  let open!: (v: T) => void;
  let fail!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    open = res;
    fail = rej;
  });
  return { promise, open, fail };
}

describe('result cache', () => {
  test('callers at one position share one computation, running or finished', async () => {
    let position = 7;
    const cache = createResultCache<string>({ position: () => position });
    const g = gate<string>();
    let calls = 0;
    const compute = () => (calls++, g.promise);
    const waiting = Array.from({ length: 16 }, () => cache.get('k', compute));
    g.open('answer@7');
    expect(await Promise.all(waiting)).toEqual(Array(16).fill('answer@7'));
    expect(await cache.get('k', compute)).toBe('answer@7');
    expect(calls).toBe(1);
    expect(cache.stats).toEqual({ hits: 16, misses: 1 });
    position = 8;
    expect(await cache.get('k', async () => 'answer@8')).toBe('answer@8');
    expect(calls).toBe(1);
  });

  test('never serves an answer computed at an older position, even one still running', async () => {
    let position = 1;
    const cache = createResultCache<string>({ position: () => position });
    const old = gate<string>();
    const first = cache.get('k', () => old.promise);
    position = 2; // a write committed while the first query runs: it may not have seen it
    let calls = 0;
    const second = cache.get('k', async () => (calls++, 'answer@2'));
    old.open('answer@1');
    expect(await first).toBe('answer@1');
    expect(await second).toBe('answer@2');
    expect(calls).toBe(1);
    expect(await cache.get('k', async () => 'again')).toBe('answer@2');
  });

  test('a failure is not kept: the next caller runs the query again', async () => {
    const cache = createResultCache<string>({ position: () => 0 });
    await expect(cache.get('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await cache.get('k', async () => 'ok')).toBe('ok');
  });

  test('the shared query is cancelled only when every waiting caller has gone', async () => {
    const cache = createResultCache<string>({ position: () => 0 });
    let seen: AbortSignal | undefined;
    const g = gate<string>();
    const a = new AbortController();
    const b = new AbortController();
    const pa = cache.get('k', (signal) => ((seen = signal), g.promise), a.signal);
    const pb = cache.get('k', () => g.promise, b.signal);
    a.abort(new Error('a left'));
    await expect(pa).rejects.toThrow('a left');
    expect(seen!.aborted).toBe(false);
    b.abort(new Error('b left'));
    await expect(pb).rejects.toThrow('b left');
    expect(seen!.aborted).toBe(true);
    // An aborted entry is not joined by a later caller.
    expect(await cache.get('k', async () => 'fresh')).toBe('fresh');
  });

  test('holds at most maxEntries, dropping the least recently used', async () => {
    const cache = createResultCache<number>({ position: () => 0, maxEntries: 2 });
    await cache.get('a', async () => 1);
    await cache.get('b', async () => 2);
    await cache.get('a', async () => -1); // a is now the most recent
    await cache.get('c', async () => 3);
    expect(cache.size).toBe(2);
    expect(await cache.get('a', async () => -1)).toBe(1);
    expect(await cache.get('b', async () => 22)).toBe(22);
  });
});

describe('analytics answers cached by the warehouse position', () => {
  let dir: string;
  let warehouse: Warehouse;
  let queries = 0;
  let app: ReturnType<typeof createApi>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ducktail-analytics-cache-'));
    warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'test' });
    await warehouse.exclusive((conn) =>
      conn.run(`CREATE SCHEMA IF NOT EXISTS public;
        CREATE TABLE public.orders (order_id BIGINT, customer_id BIGINT, product_id BIGINT, price DECIMAL(10,2),
                                    quantity INTEGER, status VARCHAR, order_date TIMESTAMPTZ);
        INSERT INTO public.orders VALUES (1, 1, 1, 10.00, 2, 'paid', '2026-11-20 10:00:00+00')`),
    );
    const engine = createQueryEngine({ instance: warehouse.instance });
    const counting: QueryEngine = { ...engine, query: (...args) => (queries++, engine.query(...args)) };
    app = createApi({
      query: counting,
      tables: async () => [],
      readiness: () => ({}),
      version: 'test',
      analytics: DEMO_ANALYTICS,
      position: () => warehouse.stats.writes,
    });
  });

  afterAll(async () => {
    await warehouse?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const daily = async () => {
    const res = await app.request('/v1/analytics/daily-orders?from=2026-11-20&to=2026-11-21');
    expect(res.status).toBe(200);
    return ((await res.json()) as { rows: unknown[][] }).rows;
  };

  test('16 identical requests are served by the one query at that position; a committed write is seen by the next request', async () => {
    await daily(); // resolves the columns (one catalog query) and fills the cache
    const before = queries;
    const answers = await Promise.all(Array.from({ length: 16 }, daily));
    expect(answers).toEqual(Array(16).fill([['2026-11-20', 1, 0, '20.00', '20.00']]));
    expect(queries - before).toBe(0);

    const writes = warehouse.stats.writes;
    await warehouse.exclusive((conn) => conn.run("INSERT INTO public.orders VALUES (2, 2, 1, 5.00, 1, 'paid', '2026-11-20 11:00:00+00')"));
    expect(warehouse.stats.writes).toBe(writes + 1);
    expect(await daily()).toEqual([['2026-11-20', 2, 0, '25.00', '12.50']]);
    expect(queries - before).toBe(1);
  });

  test('a failed write still moves the position', async () => {
    const writes = warehouse.stats.writes;
    await expect(warehouse.exclusive((conn) => conn.run('INSERT INTO public.nope VALUES (1)'))).rejects.toThrow();
    expect(warehouse.stats.writes).toBe(writes + 1);
  });
});
