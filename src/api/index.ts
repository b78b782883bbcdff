import type { Hono } from 'hono';
import { AppError, ConfigError } from '../errors.ts';

export { createAlerts, type Alert, type Alerts, type AlertThresholds } from './alerts.ts';
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

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Refuses to serve beyond loopback without tokens unless [api] allow_unauthenticated_remote = true. */
export function checkListen(listen: string, hasTokens: boolean, allowUnauthenticatedRemote: boolean): void {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  if (hasTokens || allowUnauthenticatedRemote || isLoopback(host)) return;
  throw new ConfigError([
    `api.listen: "${listen}" is reachable from other machines but [api] tokens is empty; add tokens = [{ token = "...", scope = "admin" }], listen on 127.0.0.1, or set api.allow_unauthenticated_remote = true if that is really meant`,
  ]);
}
