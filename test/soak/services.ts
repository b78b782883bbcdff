/**
 * The soak's services, each one restartable: a dedicated embedded PostgreSQL (restarted on the same
 * port and data directory), s3rver (stopped and started on the same port and directory), the Kafka
 * mock (brokers taken down and up), and ducktail itself as a process (kill -9 and respawn).
 */
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { type EmbeddedPostgres, postmaster, startEmbeddedPostgres } from '../../src/demo/postgres.ts';
import { waitFor } from '../integration/compare.ts';
import { type S3Server, startS3 } from '../support/s3.ts';

const ROOT = join(import.meta.dir, '../..');
/** application_name of the soak's own connections (spared by `terminateOthers`). */
export const SOAK_APP = 'ducktail-soak';
const PG_FLAGS = ['-c', 'fsync=off', '-c', 'max_connections=100'];

/** A PostgreSQL cluster of its own, restartable on the same port. */
export interface SoakPostgres {
  readonly url: string;
  /** Stops the server ('fast': clean shutdown; 'immediate': SIGQUIT, crash recovery at start), waits `downMs`, starts it again. */
  restart(mode: 'fast' | 'immediate', downMs: number, whileDown?: () => Promise<void>): Promise<void>;
  /** pg_terminate_backend of ducktail's connections to the database (all but the soak's own); how many. */
  terminateOthers(): Promise<number>;
  stop(): Promise<void>;
}

export async function startSoakPostgres(dir: string): Promise<SoakPostgres> {
  const dataDir = join(dir, 'pg');
  let server: EmbeddedPostgres = await startEmbeddedPostgres({ dir: dataDir, extraFlags: PG_FLAGS });
  process.once('exit', () => server.killNow()); // its postmaster runs in a session of its own
  const port = server.port;
  let up = true;
  return {
    url: server.url,
    async restart(mode, downMs, whileDown) {
      up = false;
      await server.stop({ fastMs: mode === 'fast' ? 30_000 : 0 });
      // Start only once the old postmaster is gone, or its data directory would be reused while it exits.
      await waitFor(async () => postmaster(dataDir) === null, 30_000, 'PostgreSQL stopped');
      const until = Date.now() + downMs;
      await whileDown?.();
      await Bun.sleep(Math.max(0, until - Date.now()));
      server = await startEmbeddedPostgres({ dir: dataDir, port, extraFlags: PG_FLAGS });
      up = true;
    },
    async terminateOthers() {
      const admin = postgres(server.url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
      try {
        const rows = await admin`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
                                  WHERE pid <> pg_backend_pid() AND datname = current_database()
                                    AND application_name IS DISTINCT FROM ${SOAK_APP}`;
        return rows[0]!.n as number;
      } finally {
        await admin.end({ timeout: 1 });
      }
    },
    async stop() {
      if (up) await server.stop({ fastMs: 10_000 });
      up = false;
    },
  };
}

/** s3rver that can be stopped and started again at the same endpoint, keeping its objects. */
export interface SoakS3 {
  readonly endpoint: string;
  readonly bucket: string;
  readonly up: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startSoakS3(dir: string): Promise<SoakS3> {
  const directory = join(dir, 's3');
  mkdirSync(directory, { recursive: true });
  let server: S3Server | null = await startS3({ directory });
  const port = Number(new URL(server.endpoint).port);
  const { endpoint, bucket } = server;
  return {
    endpoint,
    bucket,
    get up() {
      return server !== null;
    },
    async stop() {
      await server?.stop();
      server = null;
    },
    async start() {
      server ??= await startS3({ directory, port });
    },
  };
}

/** ducktail `run` as a child process whose output goes to `logPath`; kill -9 and respawn at will. */
export class DucktailProcess {
  private proc: Bun.Subprocess | null = null;
  private killedByUs = false;
  /** Exits the soak did not cause (each one is a finding), with their exit code or signal. */
  readonly unexpectedExits: string[] = [];

  constructor(
    private readonly configPath: string,
    private readonly cwd: string,
    readonly logPath: string,
  ) {}

  spawn(): void {
    const log = openSync(this.logPath, 'a');
    // Only the config file configures it: DUCKTAIL_* variables of the caller's environment would override it.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DUCKTAIL_')));
    try {
      this.proc = Bun.spawn([process.execPath, join(ROOT, 'src/main.ts'), 'run', '--config', this.configPath], {
        cwd: this.cwd,
        stdio: ['ignore', log, log],
        env: { ...env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
      });
    } finally {
      closeSync(log);
    }
    this.killedByUs = false;
    if (!this.exitHook) {
      // A soak that dies (or a test runner that gives up on it) leaves no ducktail behind.
      this.exitHook = () => this.proc?.kill('SIGKILL');
      process.once('exit', this.exitHook);
    }
  }
  private exitHook: (() => void) | null = null;

  get alive(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Notes an exit the soak did not cause and respawns; true if there was one. */
  reviveIfDead(): boolean {
    if (this.proc === null || this.alive || this.killedByUs) return false;
    this.unexpectedExits.push(String(this.proc.exitCode ?? this.proc.signalCode));
    this.spawn();
    return true;
  }

  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.killedByUs = true;
    this.proc.kill('SIGKILL');
    await this.proc.exited;
  }

  /** SIGTERM and wait (at most `limitMs`); the exit code, or null if it did not exit in time (then kill -9). */
  async stop(limitMs = 30_000): Promise<number | null> {
    if (!this.proc || !this.alive) return this.proc?.exitCode ?? null;
    this.killedByUs = true;
    this.proc.kill('SIGTERM');
    const r = await Promise.race([this.proc.exited, Bun.sleep(limitMs).then(() => 'timeout' as const)]);
    if (r === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.proc.exited;
      return null;
    }
    return r;
  }

  /** Errors the runtime printed as uncaught (lines such as `TypeError: ...`; ducktail's own lines start with a time). */
  uncaughtErrors(): string[] {
    try {
      return readFileSync(this.logPath, 'utf8')
        .split('\n')
        .filter((l) => /^[A-Za-z]*Error: /.test(l));
    } catch {
      return [];
    }
  }

  /** The last `n` lines of its log. */
  tail(n = 30): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
