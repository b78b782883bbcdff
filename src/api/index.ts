import type { Hono } from 'hono';
import { AppError } from '../errors.ts';

export { createApi } from './app.ts';
export type { ApiDeps, Readiness, TableInfo } from './types.ts';

/** Serves the app with Bun.serve on "host:port" until stop() or the signal. */
export async function serveApi(app: Hono, opts: { listen: string; signal?: AbortSignal }): Promise<{ url: string; stop(): Promise<void> }> {
  const cut = opts.listen.lastIndexOf(':');
  const hostname = opts.listen.slice(0, cut).replace(/^\[|\]$/g, '');
  const port = Number(opts.listen.slice(cut + 1));
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ hostname, port, fetch: app.fetch, idleTimeout: 60 });
  } catch (e) {
    throw new AppError(
      'API_LISTEN_FAILED',
      `cannot listen on ${opts.listen}: ${(e as Error).message}; set [api] listen (or DUCKTAIL_API_LISTEN) to a free host:port`,
      { cause: e },
    );
  }
  const stop = async () => {
    await server.stop(true);
  };
  opts.signal?.addEventListener('abort', () => void stop(), { once: true });
  const host = hostname.includes(':') ? `[${hostname}]` : hostname;
  return { url: `http://${host}:${server.port}`, stop };
}
