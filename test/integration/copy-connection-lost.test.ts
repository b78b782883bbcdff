// Found by the soak (bench/soak.ts --terminate): the copy's connections terminated by the server
// (pg_terminate_backend, a restart) as the copy ends. postgres.js under Bun then never answers the
// copy's closing ROLLBACK, and the source hung in phase "snapshot" for good. The copy must settle: it
// fails with COPY_CONNECTION_LOST, and the source's retry goes on with fresh connections.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';

test('the copy settles when the server terminates its connections as it ends', async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_copy_lost_${process.pid}`);
  const sql = connectSql(url, { max: 1 });
  await sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
  await sql`INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g`;
  await sql.end();
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, '../soak/copy-connection-lost.ts'), url], { stdout: 'pipe', stderr: 'pipe' });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  expect(out).toContain('outcome: rejected COPY_CONNECTION_LOST; rows: 500');
}, 90_000);
