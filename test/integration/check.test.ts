// `ducktail check` against real servers: each missing prerequisite is reported with the statement that fixes it.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { formatCheck, runCheck } from '../../src/cli/check.ts';
import { loadConfig } from '../../src/config/index.ts';
import { startEmbeddedPostgres } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';

const check = (url: string, tables = '') =>
  runCheck(loadConfig({ env: { DUCKTAIL_SOURCE_URL: url, DUCKTAIL_SOURCE_TABLES: tables, DUCKTAIL_SOURCE_PUBLICATION: 'it_check_pub' } }));

describe('on a server with wal_level=logical', () => {
  let url: string;
  let roleUrl: string;
  let sql: Sql;

  beforeAll(async () => {
    const pg = await startPostgres();
    url = await pg.createDatabase('it_check');
    sql = connectSql(url, { max: 1 });
    await sql.unsafe(`
      DROP ROLE IF EXISTS it_norepl;
      CREATE ROLE it_norepl LOGIN PASSWORD 'pw';
      CREATE TABLE keyed (id int PRIMARY KEY, v text);
      CREATE TABLE keyless (id int, v text);
      CREATE TABLE full_identity (id int, v text);
      ALTER TABLE full_identity REPLICA IDENTITY FULL;
      CREATE UNLOGGED TABLE scratch (id int);`);
    const u = new URL(url);
    u.username = 'it_norepl';
    u.password = 'pw';
    roleUrl = u.toString();
  });

  afterAll(async () => {
    await sql?.end();
  });

  test('a role without REPLICATION and a keyless table are reported with their fixes', async () => {
    const report = await check(roleUrl);
    const byCheck = Object.fromEntries(report.problems.map((p) => [p.check, p]));
    expect(Object.keys(byCheck).sort()).toEqual(['primary key', 'replication privilege']);
    expect(byCheck['replication privilege']!.fix).toBe('ALTER ROLE it_norepl WITH REPLICATION;');
    // No publication yet: every table FOR ALL TABLES would cover is checked (not the unlogged one).
    expect(report.problems.filter((p) => p.check === 'primary key').map((p) => p.problem)).toEqual([
      expect.stringContaining('public.keyless has no primary key: the publication it_check_pub that ducktail creates FOR ALL TABLES'),
    ]);
    expect(byCheck['primary key']!.fix).toContain('ALTER TABLE public.keyless REPLICA IDENTITY FULL;');
    expect(formatCheck(report)).toEndWith('2 problem(s) to fix');
  });

  test('only the configured tables are checked when [source] tables lists them', async () => {
    const report = await check(url, 'public.keyed,public.full_identity');
    expect(report.problems).toEqual([]);
    expect(formatCheck(report)).toEndWith('ready');
  });

  test('[tiering]: a misspelt time column, a column of the wrong type, a missing table and an unwritable cold store are reported', async () => {
    await sql`CREATE TABLE IF NOT EXISTS tiered (id int PRIMARY KEY, created_at timestamptz, note text)`;
    const dir = mkdtempSync(join(tmpdir(), 'ducktail-tiercheck-'));
    try {
      const blocked = join(dir, 'not-a-folder');
      await Bun.write(blocked, 'a file where the cold folder should be');
      const toml = join(dir, 'ducktail.toml');
      const tiering = (cold: string, tables: string) =>
        `[source]\nurl = "${url}"\npublication = "it_check_pub"\n[tiering]\nwarm_dir = "${join(dir, 'warm')}"\ncold_url = "${cold}"\n${tables}`;
      await Bun.write(
        toml,
        tiering(
          `file://${blocked}/cold`,
          '[tiering.tables."public.tiered"]\ntime_column = "created"\n[tiering.tables."public.tiered_typo"]\ntime_column = "created_at"\n',
        ),
      );
      const bad = await runCheck(loadConfig({ path: toml }));
      expect(bad.problems.filter((p) => p.check === 'tiering').map((p) => p.problem)).toEqual([
        'tiering.tables."public.tiered".time_column = "created": the table has no such column (columns: id, created_at, note)',
        'tiering.tables."public.tiered_typo": no such table in the source',
        expect.stringContaining(`cold_url file://${blocked}/cold:`),
      ]);
      expect(bad.ok).toContain(`warm_dir ${join(dir, 'warm')} is writable`);
      await Bun.write(toml, tiering(`file://${join(dir, 'cold')}`, '[tiering.tables."public.tiered"]\ntime_column = "note"\n'));
      const text = await runCheck(loadConfig({ path: toml }));
      expect(text.problems.filter((p) => p.check === 'tiering').map((p) => p.problem)).toEqual(['tiering.tables."public.tiered".time_column = "note" is text, not a date or timestamp']);
      await Bun.write(toml, tiering(`file://${join(dir, 'cold')}`, '[tiering.tables."public.tiered"]\ntime_column = "created_at"\n'));
      const good = await runCheck(loadConfig({ path: toml }));
      expect(good.problems.filter((p) => p.check === 'tiering')).toEqual([]); // (public.keyless is fixed in the next test)
      expect(good.ok).toContain('tiering.tables."public.tiered" tiers by created_at (timestamp with time zone)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await sql`DROP TABLE tiered`;
    }
  });

  test('once fixed, the check passes and says so', async () => {
    await sql`ALTER TABLE keyless REPLICA IDENTITY FULL`;
    const report = await check(url);
    expect(report.problems).toEqual([]);
    expect(report.ok).toContain('wal_level = logical');
    expect(report.ok).toContain('role may replicate');
  });
});

test('wal_level below logical is reported with the setting to change', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ducktail-walcheck-'));
  chmodSync(root, 0o755);
  const pg = await startEmbeddedPostgres({ dir: join(root, 'data'), extraFlags: ['-c', 'wal_level=replica'] });
  try {
    const report = await check(pg.url);
    const wal = report.problems.find((p) => p.check === 'wal_level');
    expect(wal?.problem).toBe('wal_level is replica, logical replication needs logical');
    expect(wal?.fix).toBe('ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL');
  } finally {
    await pg.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
