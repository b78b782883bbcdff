import { expect, test } from 'bun:test';
import { startPostgres } from './postgres.ts';

test('the test PostgreSQL runs with wal_level=logical and makes databases', async () => {
  const pg = await startPostgres();
  const sql = pg.sql();
  const [row] = await sql`SHOW wal_level`;
  expect(row?.wal_level).toBe('logical');
  await sql.end();
  const url = await pg.createDatabase('support_smoke');
  expect(url).toContain('/support_smoke');
  const db = (await import('postgres')).default(url, { max: 1 });
  const [cur] = await db`SELECT current_database() AS name`;
  expect(cur?.name).toBe('support_smoke');
  await db.end();
});
