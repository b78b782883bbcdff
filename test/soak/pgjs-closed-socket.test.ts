// postgres.js 3.4.9 under Bun 1.4.5: a connection closed by the server while a write was pending threw
// an uncaught TypeError from an immediate (see pgjs-closed-socket.ts) and left that query unanswered
// for good. patches/postgres+3.4.9.patch (applied by `npm install` through patch-package) fails the
// pending queries with CONNECTION_CLOSED instead. Before the patch this test saw 3 uncaught in 10 s.
import { expect, test } from 'bun:test';
import { join } from 'node:path';

test('postgres.js: connections terminated under load throw nothing uncaught and no query hangs', async () => {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, 'pgjs-closed-socket.ts'), 'terminate'], {
    stdout: 'pipe',
    stderr: 'inherit',
    env: { ...process.env, PGJS_REPRO_MS: '8000' },
  });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  console.log(out.trim().split('\n').at(-1));
  expect(out).toMatch(/mode terminate: \d+ ok, \d+ failed, 0 uncaught/);
}, 120_000);
