import type { BatchSink, ChangeBatch } from '../change/index.ts';
import type { Bus } from './bus.ts';
import { AppError } from '../errors.ts';

/**
 * The embedded bus: publish hands the batch straight to the warehouse and resolves after its
 * COMMIT, so "durable downstream" means "committed in DuckDB". Backpressure is the await itself.
 */
export function createInlineBus(): Bus {
  let sink: BatchSink | undefined;
  let attached: () => void = () => {};
  let ready = new Promise<void>((resolve) => (attached = resolve));
  let closed = false;

  return {
    inline: true,
    async publish(batch: ChangeBatch, signal?: AbortSignal): Promise<void> {
      if (closed) throw new AppError('BUS_CLOSED', 'the inline bus is closed');
      if (!sink) await abortable(ready, signal);
      if (closed || !sink) throw new AppError('BUS_CLOSED', 'the inline bus is closed');
      await sink.apply(batch);
    },
    async run(target: BatchSink, signal: AbortSignal): Promise<void> {
      sink = target;
      attached();
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      sink = undefined;
      ready = new Promise<void>((resolve) => (attached = resolve));
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}

function abortable(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(new AppError('ABORTED', 'publish aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
