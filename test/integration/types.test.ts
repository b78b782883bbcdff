// Every type of docs/TYPES.md through the initial copy and through the stream, on the embedded
// PostgreSQL 18 and on Debian's PostgreSQL 15 when installed: the mirror must equal the source,
// compared in PostgreSQL with each type's own equality (display scale and spelling aside).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import type { ColumnSchema } from '../../src/change/index.ts';
import { connectSql } from '../../src/source/index.ts';
import { mapColumn, quoteIdent } from '../../src/warehouse/pg-types.ts';
import { startDebianPostgres } from '../support/postgres-debian.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { startInlinePipeline } from './inline-pipeline.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-types-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy, really');
  CREATE DOMAIN posint AS int CHECK (VALUE > 0);
  CREATE DOMAIN cents AS numeric(12,2);
  CREATE TYPE pair AS (a int, b text);
  CREATE TABLE alltypes (
    id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric(12,3), nu numeric,
    nbig numeric(50,10), t text, vc varchar(20), bp char(5), raw bytea, d date, ts timestamp, tstz timestamptz,
    tm time, ttz timetz, iv interval, u uuid, j json, jb jsonb, e mood, dom posint, domn cents, comp pair,
    r int4range, tr tstzrange, ai int[], atx text[], an numeric(10,2)[], ad date[], ats timestamptz[], ae mood[],
    adom posint[], ab bool[], abytea bytea[], ajb jsonb[], a2 int[], ip inet, pt point
  );`;

/** Rows with the edge values of each type; ids from `base`. */
const rows = (base: number) => `
  INSERT INTO alltypes VALUES
  (${base + 1}, true, -32768, 2147483647, -9223372036854775808, 1.5, -0.1, 123456789.125, 12345678901234567890.123456789012345678,
   '1234567890123456789012345678901234567890.0123456789', 'tab	and ''quote'' and ü', 'varchar', 'ab',
   '\\x00ff10', '0044-03-15 BC', '0044-03-15 12:30:00.5 BC', '2026-11-25 06:00:00.123456+00', '24:00:00', '04:05:06.789+05:30',
   '-1 days +02:03:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', 'happy, really', 7, 10.25,
   ROW(1, 'x,y'), '[1,5)', '["2026-01-01 00:00:00+00",infinity)', '{1,NULL,-3}', '{plain,"a,b","NULL",NULL,"x\\"y","back\\\\slash","","{}"}',
   '{1.50,NULL,-0.01}', '{"0044-03-15 BC",infinity,NULL}', '{"2026-11-25 06:00:00+00",-infinity}', '{sad,"happy, really",NULL}',
   '{1,2}', '{t,f,NULL}', '{"\\\\x01ff",NULL}', ARRAY['{"k": "v"}'::jsonb, NULL], '{{1,2},{3,4}}', '192.168.0.1/24', '(1.5,2)'),
  (${base + 2}, NULL, NULL, NULL, NULL, 'NaN', '-Infinity', NULL, 0, NULL, '', NULL, NULL, '\\x', 'infinity', '-infinity', 'infinity',
   NULL, NULL, '1 year 2 mons -3 days -04:05:06.789', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'empty', NULL, '{}', '{}', NULL, NULL,
   NULL, '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (${base + 3}, false, 1, 1, 1, 'Infinity', 1e300, -0.001, -1.5, NULL, 'x', 'y', 'z', NULL, '2026-01-01', '2026-01-01 00:00:00',
   '0001-01-01 00:00:00+00 BC', '00:00:00', '00:00:00-12', '00:00:00', NULL, '[]', '[]', 'sad', 1, -1.00, ROW(NULL, NULL),
   NULL, NULL, '{0}', '{"  spaced  "}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{7}', NULL, NULL);`;

/** Columns whose type has no equality operator in PostgreSQL: compared by their text output. */
const BY_TEXT = new Set(['j', 'pt', 'ajb']);

/** Row ids whose column differs between source and mirror ([] = equal), compared in PostgreSQL. */
async function differences(sql: Sql, duckRows: Map<number, Record<string, string | null>>): Promise<string[]> {
  const cols = (await sql`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
     WHERE a.attrelid = 'alltypes'::regclass AND a.attnum > 1 AND NOT a.attisdropped ORDER BY a.attnum`) as unknown as { name: string; type: string }[];
  const source = (await sql`SELECT id FROM alltypes ORDER BY id`).map((r) => Number(r.id));
  const out: string[] = [];
  if (JSON.stringify(source) !== JSON.stringify([...duckRows.keys()].sort((a, b) => a - b))) out.push(`ids: ${source} vs ${[...duckRows.keys()]}`);
  for (const c of cols) {
    const col = quoteIdent(c.name);
    for (const id of source) {
      const mirror = duckRows.get(id)?.[c.name] ?? null;
      let expr: string;
      if (c.name === 'a2') expr = `(CASE WHEN ${col} IS NULL THEN NULL ELSE ARRAY(SELECT unnest(${col})) END) IS NOT DISTINCT FROM $1::text::int[]`; // flattened, as documented
      else if (BY_TEXT.has(c.name)) expr = `${col}::text IS NOT DISTINCT FROM $1::text::${c.type}::text`;
      else expr = `${col} IS NOT DISTINCT FROM $1::text::${c.type}`;
      const [r] = await sql.unsafe(`SELECT ${expr} AS same, ${col}::text AS src FROM alltypes WHERE id = $2`, [mirror, id]);
      if (!r?.same) out.push(`row ${id} column ${c.name} (${c.type}): source ${r?.src} mirror ${mirror}`);
    }
  }
  return out;
}

async function roundTrip(url: string, tag: string): Promise<void> {
  const sql = connectSql(url, { max: 2 });
  const warnings: string[] = [];
  const slot = `types_${tag}`;
  const p = await startInlinePipeline(dir, { url, slot, tables: ['public.alltypes'], batchRows: 100 }, (m) => warnings.push(m));
  const warehouse = p.warehouse;
  try {
    await sql.unsafe(SCHEMA);
    await sql.unsafe(rows(0)); // through the initial copy
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    await sql.unsafe(rows(100)); // through the stream
    await sql`UPDATE alltypes SET ai = '{9,NULL}', e = 'ok', iv = '-00:00:01.5' WHERE id IN (1, 101)`;
    const read = async () => {
      const duck = await warehouse.connect();
      try {
        // The layout as the warehouse stored it (domains resolved, enums named), read back with the same mapping.
        const stored = await duck.runAndReadAll("SELECT columns::VARCHAR FROM _ducktail.tables WHERE name = 'public.alltypes'");
        const columns = JSON.parse(String(stored.getRows()[0]![0])) as ColumnSchema[];
        const exprs = columns.map((c) => `${mapColumn(c).toText(`t.${quoteIdent(c.name)}`)} AS ${quoteIdent(c.name)}`);
        const r = await duck.runAndReadAll(`SELECT ${exprs.join(', ')} FROM public.alltypes t`);
        const out = new Map<number, Record<string, string | null>>();
        for (const row of r.getRowObjects()) {
          const rec = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? null : String(v)]));
          out.set(Number(rec.id), rec);
        }
        return out;
      } finally {
        duck.closeSync();
      }
    };
    await waitFor(async () => (await read()).size === 6 && (await read()).get(101)?.e === 'ok', 30_000, 'rows streamed').catch(() => {});
    expect(await differences(sql, await read())).toEqual([]);
    // History holds typed values too: the streamed insert and the update of row 101.
    const duck = await warehouse.connect();
    const types = Object.fromEntries(
      (await duck.runAndReadAll("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '_hot' AND table_name = 'public.alltypes'"))
        .getRows().map((r) => [String(r[0]), String(r[1])]),
    );
    const hist = await duck.runAndReadAll("SELECT count(*) FROM history.alltypes WHERE id = 101 AND ai = [9, NULL]::INTEGER[] AND _op = 'U'");
    duck.closeSync();
    expect(Number(hist.getRows()[0]![0])).toBe(1);
    expect(types).toMatchObject({
      ai: 'INTEGER[]', atx: 'VARCHAR[]', an: 'DECIMAL(10,2)[]', ad: 'DATE[]', ae: 'VARCHAR[]', adom: 'INTEGER[]', abytea: 'BLOB[]',
      e: 'VARCHAR', dom: 'INTEGER', domn: 'DECIMAL(12,2)', nu: 'DECIMAL(38,18)', n: 'DECIMAL(12,3)', ttz: 'TIME WITH TIME ZONE',
      iv: 'INTERVAL', comp: 'VARCHAR', r: 'VARCHAR', nbig: 'VARCHAR', ip: 'VARCHAR', pt: 'VARCHAR', d: 'DATE', tstz: 'TIMESTAMP WITH TIME ZONE',
    });
    // One warning per column without an exact type, not one per Relation message.
    expect(warnings.map((w) => w.split(':')[0]).sort()).toEqual([
      'column public.alltypes.ip', 'column public.alltypes.nbig', 'column public.alltypes.pt',
    ]);
  } finally {
    await p.stop();
    await sql.end({ timeout: 2 });
  }
}

describe('every type round-trips through the initial copy and the stream', () => {
  test('PostgreSQL 18 (embedded)', async () => {
    const pg = await startPostgres();
    await roundTrip(await pg.createDatabase(`it_types_${process.pid}`), 'pg18');
  });

  test('PostgreSQL 15 (Debian), when installed', async () => {
    const pg = await startDebianPostgres(15);
    if (!pg) {
      console.warn('PostgreSQL 15 is not installed at /usr/lib/postgresql/15/bin: skipped');
      return;
    }
    try {
      await roundTrip(pg.url, 'pg15');
    } finally {
      await pg.stop();
    }
  });
});
