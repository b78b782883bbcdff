/**
 * A small result cache for the analytics endpoints, keyed by (request key, warehouse position).
 *
 * The position is a counter the warehouse bumps after every write it commits (an apply, a tiering step).
 * A request reads the position first and then either joins the entry computed at that same position
 * (finished or still running) or starts a new query. A query started after the position was read runs on
 * a DuckDB snapshot at least that new, so an answer is never older than the position its request saw:
 * once the warehouse moves on, older entries are never served again. Concurrent identical requests
 * (16 dashboards asking the same thing) cost one query.
 *
 * The query is shared, so no single caller's abort cancels it: it is cancelled only when every caller
 * waiting for it has gone (its own timeout still applies).
 */
export interface ResultCache<T> {
  /** The answer for `key` at the current position: shared if one exists or is running, else computed. */
  get(key: string, compute: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Entries held (finished or running). */
  readonly size: number;
  /** Requests served by an existing entry / by a new query. */
  readonly stats: { hits: number; misses: number };
}

interface Entry<T> {
  position: number;
  value: Promise<T>;
  /** Callers still waiting for a running query; it is cancelled when the last one aborts. */
  waiting: number;
  done: boolean;
  controller: AbortController;
}

/** Creates the cache; `position` must only grow and must change after every committed write. */
export function createResultCache<T>(opts: { position: () => number; maxEntries?: number }): ResultCache<T> {
  const maxEntries = opts.maxEntries ?? 256;
  const entries = new Map<string, Entry<T>>();
  const stats = { hits: 0, misses: 0 };

  function follow(entry: Entry<T>, signal?: AbortSignal): Promise<T> {
    if (entry.done || !signal) return entry.value;
    if (signal.aborted) return Promise.reject(signal.reason);
    entry.waiting++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (--entry.waiting === 0 && !entry.done) entry.controller.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.value.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  return {
    get(key, compute, signal) {
      const position = opts.position();
      const found = entries.get(key);
      if (found && found.position === position && !found.controller.signal.aborted) {
        stats.hits++;
        entries.delete(key); // most recently used last
        entries.set(key, found);
        return follow(found, signal);
      }
      stats.misses++;
      const controller = new AbortController();
      const entry: Entry<T> = { position, value: Promise.resolve(undefined as T), waiting: 0, done: false, controller };
      entry.value = (async () => compute(controller.signal))().then(
        (v) => {
          entry.done = true;
          return v;
        },
        (e: unknown) => {
          entry.done = true;
          if (entries.get(key) === entry) entries.delete(key); // failures are not kept
          throw e;
        },
      );
      entry.value.catch(() => {}); // a caller that gave up leaves no unhandled rejection
      entries.delete(key);
      entries.set(key, entry);
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
      return follow(entry, signal);
    },
    get size() {
      return entries.size;
    },
    stats,
  };
}
