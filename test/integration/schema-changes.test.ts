// Schema changes while streaming, no restart: ADD, widen past int4, numeric precision up, longer
// varchar, RENAME (values kept), DROP; the warehouse follows each one live and ends equal to the source.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { connectSql } from '../../src/source/index.ts';
import type { Warehouse } from '../../src/warehouse/index.ts';
import { type DebianPostgres, startDebianPostgres } from '../support/postgres-debian.ts';
import { startPostgres } from '../support/postgres.ts';
import { snapshotBoth, waitFor } from './compare.ts';
import { type InlinePipeline, startInlinePipeline } from './inline-pipeline.ts';

let dir: string;
let sql: Sql;
let url: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-schema-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function start(slot: string): Promise<InlinePipeline> {
  return startInlinePipeline(dir, { url, slot: `${slot}_${version}`, heartbeatIntervalS: 1 });
}

async function same(w: Warehouse, table: string): Promise<string | null> {
  const duck = await w.connect();
  try {
    const { source, mirror } = await snapshotBoth(sql, duck, 'public', table);
    return JSON.stringify(source) === JSON.stringify(mirror) ? null : `source ${JSON.stringify(source.slice(0, 3))} mirror ${JSON.stringify(mirror.slice(0, 3))}`;
  } catch (e) {
    return String(e);
  } finally {
    duck.closeSync();
  }
}

async function expectSame(w: Warehouse, table: string, step: string): Promise<void> {
  await waitFor(async () => (await same(w, table)) === null, 20_000, `${table} equal after ${step}`).catch(() => {});
  expect(`${step}: ${await same(w, table)}`).toBe(`${step}: null`);
}

async function duckColumns(w: Warehouse, table: string): Promise<Record<string, string>> {
  const duck = await w.connect();
  try {
    // The hot table's own columns: not the hidden copy columns (src/warehouse/lazy-copy.ts), which no ALTER touches.
    const r = await duck.runAndReadAll(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '_hot' AND table_name = '${table}' AND NOT starts_with(column_name, '_ducktail_copy_') ORDER BY ordinal_position`,
    );
    return Object.fromEntries(r.getRows().map((x) => [String(x[0]), String(x[1])]));
  } finally {
    duck.closeSync();
  }
}

let version = 18;

for (const v of [18, 15]) {
describe(`PostgreSQL ${v}`, () => {
  let debian: DebianPostgres | null = null;
  beforeAll(async () => {
    version = v;
    if (v === 18) url = await (await startPostgres()).createDatabase(`it_schema_${process.pid}`);
    else {
      debian = await startDebianPostgres(v);
      url = debian?.url ?? '';
    }
    if (url) sql = connectSql(url, { max: 2 });
  });
  afterAll(async () => {
    if (url) await sql.end();
    await debian?.stop();
    url = '';
  });

  test('ADD, widen (int4 -> int8 past 2^31, numeric, varchar), RENAME and DROP COLUMN while streaming', async () => {
    if (!url) return console.warn(`PostgreSQL ${v} is not installed: skipped`);
    await sql.unsafe(`
      CREATE TABLE evo (id int PRIMARY KEY, a int, b numeric(6,2), c varchar(5), d text);
      INSERT INTO evo SELECT g, g, g / 4.0, 'c' || g, 'd' || g FROM generate_series(1, 50) g;`);
    const p = await start('schema_evo');
    try {
      await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
      await expectSame(p.warehouse, 'evo', 'copy');

      await sql.unsafe(`ALTER TABLE evo ADD COLUMN e int DEFAULT 7; INSERT INTO evo VALUES (51, 51, 1.25, 'x', 'y', 8); UPDATE evo SET e = 9 WHERE id = 2;`);
      await expectSame(p.warehouse, 'evo', 'ADD COLUMN');

      await sql.unsafe(`ALTER TABLE evo ALTER COLUMN a TYPE bigint; UPDATE evo SET a = 3000000000 + id WHERE id <= 10;`);
      await expectSame(p.warehouse, 'evo', 'int4 -> int8');

      await sql.unsafe(`ALTER TABLE evo ALTER COLUMN b TYPE numeric(14,4), ALTER COLUMN c TYPE varchar(50);
                        UPDATE evo SET b = 1234567890.1234, c = repeat('long', 10) WHERE id = 3;`);
      await expectSame(p.warehouse, 'evo', 'numeric and varchar widened');

      await sql.unsafe(`ALTER TABLE evo RENAME COLUMN d TO d2; UPDATE evo SET a = a + 1 WHERE id = 4;`);
      await expectSame(p.warehouse, 'evo', 'RENAME COLUMN');

      await sql.unsafe(`ALTER TABLE evo DROP COLUMN c; INSERT INTO evo (id, a, b, d2, e) VALUES (52, 1, 1, 'z', 1);`);
      await expectSame(p.warehouse, 'evo', 'DROP COLUMN');

      expect(await duckColumns(p.warehouse, 'public.evo')).toEqual({
        id: 'INTEGER', a: 'BIGINT', b: 'DECIMAL(14,4)', d2: 'VARCHAR', e: 'INTEGER',
      });
      const history = await duckColumns(p.warehouse, 'history.evo');
      expect(history).toMatchObject({ a: 'BIGINT', b: 'DECIMAL(14,4)', c__dropped: 'VARCHAR', d2: 'VARCHAR' });
      const duck = await p.warehouse.connect();
      // History of the renamed column keeps its values under the new name, from the copy on.
      const copied = await duck.runAndReadAll("SELECT d2 FROM history.evo WHERE id = 1 AND _op = 'R'");
      duck.closeSync();
      expect(copied.getRows()).toEqual([['d1']]);

      // Columns PostgreSQL fills by rewriting the table (no row changes in the WAL): copied again.
      await sql.unsafe(`ALTER TABLE evo ADD COLUMN f timestamptz DEFAULT clock_timestamp(), ADD COLUMN g serial;
                        UPDATE evo SET a = a + 1 WHERE id = 5;`);
      await expectSame(p.warehouse, 'evo', 'ADD COLUMN with a volatile default and a serial');
      const filled = await p.warehouse.connect();
      const nulls = await filled.runAndReadAll('SELECT count(*) FROM evo WHERE f IS NULL OR g IS NULL');
      filled.closeSync();
      expect(Number(nulls.getRows()[0]![0])).toBe(0);
      expect(p.status.restarts).toBe(0);
    } finally {
      await p.stop();
    }
  });

  test('a table joining the publication is copied live; DDL without DML arrives; an incompatible type change re-copies the table', async () => {
    if (!url) return console.warn(`PostgreSQL ${v} is not installed: skipped`);
    await sql.unsafe(`
      CREATE TABLE main_t (id int PRIMARY KEY, v text);
      INSERT INTO main_t SELECT g, 'v' || g FROM generate_series(1, 20) g;
      CREATE PUBLICATION schema_join_${version}_pub FOR TABLE main_t;`);
    const p = await start('schema_join');
    try {
      await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
      await expectSame(p.warehouse, 'main_t', 'copy');

      // A table with rows joins the publication: copied without a restart, then streamed.
      await sql.unsafe(`
        CREATE TABLE joined (id int PRIMARY KEY, w int);
        INSERT INTO joined SELECT g, g * 10 FROM generate_series(1, 300) g;
        ALTER PUBLICATION schema_join_${version}_pub ADD TABLE joined;`);
      await expectSame(p.warehouse, 'joined', 'table joined (no DML since)');
      await sql`UPDATE joined SET w = -1 WHERE id <= 5`;
      await sql`INSERT INTO main_t VALUES (21, 'after')`;
      await expectSame(p.warehouse, 'joined', 'joined table streaming');

      // DDL followed by no DML: the idle catalog check sends the layout.
      await sql`ALTER TABLE main_t ADD COLUMN extra int DEFAULT 5`;
      await expectSame(p.warehouse, 'main_t', 'ADD COLUMN without DML');

      // text -> int cannot be converted in place by the warehouse: the table is copied again.
      await sql.unsafe(`UPDATE main_t SET v = id::text; ALTER TABLE main_t ALTER COLUMN v TYPE int USING v::int; UPDATE main_t SET v = v + 1000 WHERE id = 1;`);
      await expectSame(p.warehouse, 'main_t', 'incompatible type change');
      expect((await duckColumns(p.warehouse, 'public.main_t')).v).toBe('INTEGER');
      expect((await duckColumns(p.warehouse, 'history.main_t')).v__dropped).toBe('VARCHAR');
      await sql`INSERT INTO main_t VALUES (22, 22, 0)`;
      await expectSame(p.warehouse, 'main_t', 'streaming after the re-copy');
      expect(p.status.restarts).toBe(0);
    } finally {
      await p.stop();
    }
  });
});
}
