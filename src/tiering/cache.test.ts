import { afterEach, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createColdCache } from './cache.ts';
import { createColdStore } from './cold.ts';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a cold file a query holds is not evicted for another query; it goes once released', async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-cache-'));
  const store = createColdStore(`file://${join(dir, 'store')}`, { endpoint: '', region: '', accessKeyId: '', secretAccessKey: '' });
  mkdirSync(join(dir, 'store'), { recursive: true });
  const loc = (name: string) => {
    writeFileSync(join(dir, 'store', `${name}.parquet`), Buffer.alloc(1000, 1));
    return store.locationOf(`${name}.parquet`);
  };
  const [a, b, c] = [loc('a'), loc('b'), loc('c')];
  const cache = createColdCache(store, join(dir, 'cache'), 2500); // room for two files
  const releaseA = await cache.acquire([a]);
  await cache.ensure([b, c]); // needs room: a is the least recently used, but a reader holds it
  expect(existsSync(cache.pathOf(a))).toBe(true);
  expect(cache.bytes()).toBe(3000); // over the limit while a is read, rather than pulled from under it
  releaseA();
  releaseA(); // twice is harmless
  await cache.ensure([b, c]);
  expect(existsSync(cache.pathOf(a))).toBe(false);
  expect(cache.bytes()).toBe(2000);
  // A query needing more than the cache holds is refused with the fix in the message.
  await expect(cache.acquire([a, b, c])).rejects.toThrow(/cold_cache_size/);
});
