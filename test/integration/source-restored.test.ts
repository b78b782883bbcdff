// The source restored from a backup (its WAL rewound behind what the warehouse applied): the warehouse
// holds changes the restored server never had, and the server writes new changes at LSNs the warehouse
// already recorded as applied. ducktail must notice and copy again, not skip the new changes.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { type EmbeddedPostgres, postmaster, startEmbeddedPostgres } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { expectMirrorEqual, waitFor } from './compare.ts';
import { type InlinePipeline, startInlinePipeline } from './inline-pipeline.ts';

let dir: string;
/** A copy keeping owners and modes (the cluster belongs to the postgres OS user when tests run as root). */
function copyDir(from: string, to: string): void {
  const r = Bun.spawnSync(['cp', '-a', from, to]);
  if (r.exitCode !== 0) throw new Error(`cp -a ${from} ${to}: ${r.stderr.toString()}`);
}
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-restored-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach the cluster's data directory
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('source restored to an earlier point: the warehouse is copied again and equals the restored source', async () => {
  const dataDir = join(dir, 'pg');
  const backup = join(dir, 'pg-backup');
  const flags = ['-c', 'fsync=off'];
  let server: EmbeddedPostgres = await startEmbeddedPostgres({ dir: dataDir, extraFlags: flags });
  const port = server.port;
  let sql: Sql | null = connectSql(server.url, { max: 2 });
  let p: InlinePipeline | null = null;
  const logs: string[] = [];
  const pipeline = () =>
    startInlinePipeline(dir, { url: server.url, slot: 'restored', tables: ['public.items'], connectTimeoutS: 5 }, undefined, (m) => logs.push(m));
  const stopServer = async () => {
    await sql?.end({ timeout: 2 });
    sql = null;
    await server.stop();
    await waitFor(async () => postmaster(dataDir) === null, 30_000, 'PostgreSQL stopped');
  };
  const startServer = async () => {
    server = await startEmbeddedPostgres({ dir: dataDir, port, extraFlags: flags });
    sql = connectSql(server.url, { max: 2 });
  };
  try {
    await sql`CREATE TABLE items (id int PRIMARY KEY, v text)`;
    await sql`INSERT INTO items SELECT g, 'before backup ' || g FROM generate_series(1, 100) g`;
    p = await pipeline();
    await waitFor(async () => p!.status.phase === 'streaming', 30_000, 'streaming');
    await expectMirrorEqual(p.warehouse, sql, 'items');
    await p.stop();
    p = null;

    // The backup: a cold copy of the data directory, slot included.
    await stopServer();
    copyDir(dataDir, backup);
    await startServer();

    // Work after the backup, applied by the warehouse: lost when the source is restored.
    p = await pipeline();
    await waitFor(async () => p!.status.phase === 'streaming', 30_000, 'streaming');
    for (let i = 0; i < 20; i++) {
      await sql!`INSERT INTO items SELECT g, 'after backup ' || g FROM generate_series(${1000 + i * 100}::int, ${1099 + i * 100}::int) g`;
      await sql!`UPDATE items SET v = v || ' changed' WHERE id = ${i + 1}`;
    }
    await expectMirrorEqual(p.warehouse, sql!, 'items');
    await p.stop();
    p = null;

    // Restore the backup; the restored server writes new changes at LSNs the warehouse has seen.
    await stopServer();
    rmSync(dataDir, { recursive: true, force: true });
    copyDir(backup, dataDir);
    await startServer();
    await sql!`INSERT INTO items SELECT g, 'after restore ' || g FROM generate_series(500, 520) g`;
    await sql!`DELETE FROM items WHERE id = 7`;
    await sql!`UPDATE items SET v = 'restored and changed' WHERE id = 3`;

    p = await pipeline();
    await waitFor(async () => p!.status.phase === 'streaming', 60_000, 'streaming after the restore');
    expect(await expectMirrorEqual(p.warehouse, sql!, 'items')).toBe(120);
    expect(logs.some((m) => m.includes('behind what the warehouse applied'))).toBe(true);
    // And it streams on from there.
    await sql!`INSERT INTO items VALUES (9999, 'streamed after the re-copy')`;
    expect(await expectMirrorEqual(p.warehouse, sql!, 'items')).toBe(121);
  } finally {
    await p?.stop();
    await sql?.end({ timeout: 2 });
    await server.stop();
  }
}, 240_000);
