import { Consumer } from '@platformatic/kafka';
import { type FetchPlan, type FetchResult, fillAndPack } from './kafka-fetch.ts';
import { useOwnRecordReader } from './kafka-fetch-parse.ts';
import type { WorkerRequest } from './kafka-fetch-worker.ts';
import { workerUrl } from './worker-url.ts';

/** Fetches and decodes owned partitions: in a Worker thread, or in this thread when no Worker can start. */
export interface Fetcher {
  fetch(plan: FetchPlan): Promise<FetchResult>;
  close(): Promise<void>;
}

export interface FetcherOptions {
  brokers: string[];
  groupId: string;
  clientId: string;
  /** false = decode on the calling thread (no Worker). */
  worker: boolean;
}

/** The Worker-backed fetcher, falling back to the calling thread if the Worker fails to start or dies. */
export function createFetcher(opts: FetcherOptions, log: (m: string) => void): Fetcher {
  if (!opts.worker) return localFetcher(opts);
  let impl: Fetcher;
  try {
    impl = workerFetcher(opts, (e) => {
      log(`kafka: fetch worker failed (${e}); fetching on the main thread from now on`);
      const dead = impl;
      impl = localFetcher(opts);
      void dead.close();
    });
  } catch (e) {
    log(`kafka: no fetch worker (${String(e)}); fetching on the main thread`);
    impl = localFetcher(opts);
  }
  return { fetch: (plan) => impl.fetch(plan), close: () => impl.close() };
}

function localFetcher(opts: FetcherOptions): Fetcher {
  const consumer = new Consumer({
    bootstrapBrokers: opts.brokers, retries: 1, retryDelay: 100, timeout: 5_000, connectTimeout: 2_000,
    groupId: opts.groupId, // required by the constructor; no group request is ever sent
    clientId: opts.clientId,
  });
  useOwnRecordReader(consumer);
  return {
    fetch: (plan) => fillAndPack(consumer, plan, null),
    close: () => consumer.close(true).catch(() => {}),
  };
}

type Reply = { id: number; result?: FetchResult; error?: string } | { closed: true } | { ready: true };

/** A Worker that has not answered its `open` by then is taken as unable to start (e.g. its file is missing). */
const START_TIMEOUT_MS = 10_000;

function workerFetcher(opts: FetcherOptions, failed: (e: string) => void): Fetcher {
  const worker = new Worker(workerUrl('kafka-fetch-worker'));
  const pending = new Map<number, { resolve(r: FetchResult): void; reject(e: Error): void }>();
  let next = 0;
  let closed: (() => void) | undefined;
  let dead = false;
  let started: () => void = () => {};
  const ready = new Promise<void>((resolve) => (started = resolve));
  const post = (m: WorkerRequest) => worker.postMessage(m);
  worker.onmessage = (event: MessageEvent<Reply>) => {
    const r = event.data;
    if ('closed' in r) return closed?.();
    if ('ready' in r) return started();
    const p = pending.get(r.id);
    pending.delete(r.id);
    if (r.error !== undefined) p?.reject(new Error(r.error));
    else p?.resolve(r.result!);
  };
  const fail = (why: string) => {
    if (dead) return;
    dead = true;
    for (const p of pending.values()) p.reject(new Error(`fetch worker failed: ${why}`));
    pending.clear();
    started();
    failed(why);
  };
  worker.onerror = (event: ErrorEvent) => fail(event.message);
  const timer = setTimeout(() => fail(`no answer within ${START_TIMEOUT_MS} ms of starting`), START_TIMEOUT_MS);
  void ready.then(() => clearTimeout(timer));
  post({ type: 'open', brokers: opts.brokers, groupId: opts.groupId, clientId: opts.clientId });
  return {
    async fetch(plan) {
      await ready; // resolves on the worker's answer, or when it is given up (then `dead`)
      if (dead) throw new Error('fetch worker stopped');
      return new Promise<FetchResult>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        post({ type: 'fetch', id, plan });
      });
    },
    async close() {
      clearTimeout(timer);
      if (!dead) {
        dead = true;
        const done = new Promise<void>((resolve) => (closed = resolve));
        post({ type: 'close' });
        await Promise.race([done, Bun.sleep(2_000)]);
      }
      worker.terminate();
      for (const p of pending.values()) p.reject(new Error('fetch worker stopped'));
      pending.clear();
    },
  };
}
