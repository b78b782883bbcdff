/**
 * Reproduces an uncaught TypeError of postgres.js 3.4.9 under Bun 1.4.5, found by the soak (fixed by
 * patches/postgres+3.4.9.patch; run it with the package unpatched to see the bug): when the
 * server closes connections that have queries in flight (pg_terminate_backend here; a PostgreSQL restart
 * in the soak), `nextWrite` runs from an immediate with `socket` already null and throws
 * "null is not an object (evaluating 'socket.write')", outside any promise of the caller.
 * `bun test/soak/pgjs-closed-socket.ts [terminate|restart] [--no-handler]` prints the counts;
 * test/soak/pgjs-closed-socket.test.ts expects none, and every worker to finish (no query left hanging).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../../src/demo/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'pgjs-repro-'));
chmodSync(dir, 0o755);
let server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), extraFlags: ['-c', 'fsync=off'] });
const port = server.port;
const mode = process.argv[2] ?? 'terminate';
let uncaught = 0;
if (!process.argv.includes('--no-handler')) process.on('uncaughtException', (e) => {
  uncaught++;
  console.log('UNCAUGHT', (e as Error).message);
});
const sql = postgres(server.url, { max: 4, onnotice: () => {}, connect_timeout: 5 });
const admin = postgres(server.url, { max: 1, onnotice: () => {} });
let stop = false;
let ok = 0;
let failed = 0;
const workers = Array.from({ length: 4 }, async () => {
  while (!stop) {
    try {
      await sql.begin(async (tx) => {
        await tx`SELECT 1`;
        await tx`SELECT pg_sleep(0.001)`;
      });
      ok++;
    } catch {
      failed++;
      await Bun.sleep(20);
    }
  }
});
const until = Date.now() + Number(process.env.PGJS_REPRO_MS ?? 20_000);
while (Date.now() < until) {
  await Bun.sleep(50 + Math.random() * 200);
  if (mode === 'terminate') {
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`.catch(() => {});
  } else {
    await server.stop({ fastMs: 0 });
    await Bun.sleep(200);
    server = await startEmbeddedPostgres({ dir: join(dir, 'pg'), port, extraFlags: ['-c', 'fsync=off'] });
  }
}
stop = true;
await Promise.all(workers);
console.log(`mode ${mode}: ${ok} ok, ${failed} failed, ${uncaught} uncaught`);
await sql.end({ timeout: 1 });
await admin.end({ timeout: 1 });
await server.stop();
rmSync(dir, { recursive: true, force: true });
