import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ColdStore } from './cold.ts';
import { TieringError } from './warm.ts';

/** A bounded local copy of cold S3 files for DuckDB to read (httpfs is not available offline). */
export interface ColdCache {
  readonly dir: string;
  /** The local path a location is read from (present or not). */
  pathOf(location: string): string;
  /** Makes every location present locally, evicting least recently used others beyond the size limit. */
  ensure(locations: string[]): Promise<void>;
  /**
   * Like ensure, and keeps the files from eviction until the returned release is called (a query
   * reading them); meanwhile the cache may exceed its size rather than pull a file from under a reader.
   */
  acquire(locations: string[]): Promise<() => void>;
  /** Bytes currently cached. */
  bytes(): number;
}

/** Creates the cache over `dir`, holding at most `limitBytes` (files a query needs are never evicted for it). */
export function createColdCache(store: ColdStore, dir: string, limitBytes: number): ColdCache {
  mkdirSync(dir, { recursive: true });
  // Recency order: oldest first. Starts from what an earlier run left, by modification time.
  const entries = new Map<string, number>();
  const initial = (readdirSync(dir, { recursive: true }) as string[])
    .map((p) => join(dir, p))
    .filter((p) => p.endsWith('.parquet') && statSync(p).isFile())
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  for (const p of initial) entries.set(p, statSync(p).size);
  let total = [...entries.values()].reduce((a, b) => a + b, 0);

  const pathOf = (location: string) => join(dir, location.replace(/^[a-z0-9]+:\/\//, ''));
  let chain: Promise<unknown> = Promise.resolve();
  /** Files in use by queries (path -> readers). */
  const pins = new Map<string, number>();

  async function ensureNow(locations: string[]): Promise<void> {
    const wanted = new Set(locations.map(pathOf));
    for (const location of locations) {
      const p = pathOf(location);
      if (!existsSync(p)) {
        await store.get(location, p);
        entries.delete(p);
        entries.set(p, statSync(p).size);
        total += statSync(p).size;
      } else {
        const size = entries.get(p) ?? statSync(p).size;
        if (!entries.has(p)) total += size;
        entries.delete(p);
        entries.set(p, size);
      }
    }
    for (const [p, size] of entries) {
      if (total <= limitBytes) break;
      if (wanted.has(p) || pins.has(p)) continue;
      rmSync(p, { force: true });
      entries.delete(p);
      total -= size;
    }
    let needed = 0;
    for (const p of wanted) needed += entries.get(p) ?? 0;
    if (needed > limitBytes) {
      throw new TieringError(
        'COLD_CACHE_TOO_SMALL',
        `this query needs ${wanted.size} cold files (${needed} bytes) but tiering.cold_cache_size allows ${limitBytes} bytes: ` +
          'raise cold_cache_size or narrow the query to fewer tables',
      );
    }
  }

  return {
    dir,
    pathOf,
    ensure(locations) {
      const run = chain.then(() => ensureNow(locations));
      chain = run.catch(() => {});
      return run;
    },
    async acquire(locations) {
      const run = chain.then(() => ensureNow(locations));
      chain = run.catch(() => {});
      await run;
      const paths = [...new Set(locations.map(pathOf))];
      for (const p of paths) pins.set(p, (pins.get(p) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        for (const p of paths) {
          const n = (pins.get(p) ?? 1) - 1;
          if (n <= 0) pins.delete(p);
          else pins.set(p, n);
        }
      };
    },
    bytes: () => total,
  };
}

/** Parses a size like "2GB" or "512 MiB" into bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?i?B)$/i.exec(s.trim());
  if (!m) throw new TieringError('BAD_SIZE', `"${s}" is not a size like "2GB"`);
  const unit = m[2]!.toUpperCase();
  const pow = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0] as 'B' | 'K' | 'M' | 'G' | 'T'] ?? 0;
  const base = unit.includes('I') ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** pow);
}
