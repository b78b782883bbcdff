// Values PostgreSQL holds that DuckDB's column cannot hold exactly (NaN in numeric, ±Infinity in unconstrained numeric; an
// unconstrained numeric past DECIMAL(38,18); a timestamp past DuckDB's year 294247) neither stop the apply nor get rounded: the column is
// NULL, the exact text is in _ducktail.unfit_values, the stream goes on. Copy and stream alike.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { startInlinePipeline } from './inline-pipeline.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-unfit-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('NaN, ±Infinity, too-wide numerics and timestamps past year 294247: NULL in the column, exact text kept aside, the stream goes on', async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_unfit_${process.pid}`);
  const sql = connectSql(url, { max: 2 });
  await sql.unsafe(`
    CREATE TABLE prices (id int PRIMARY KEY, price numeric(10,2), ratio numeric, tags numeric(6,1)[], at timestamp, atz timestamptz);
    INSERT INTO prices VALUES (1, 'NaN', 1.5, '{1.0,NaN}', '294270-06-01 12:00:00', '2026-11-25 10:00:00+00'),
      (2, 9.99, 0.1234567890123456789012, NULL, 'infinity', NULL), (3, 1.00, 2, NULL, '0044-03-15 BC', NULL);`);
  const warnings: string[] = [];
  const p = await startInlinePipeline(dir, { url, slot: 'unfit' }, (m) => warnings.push(m));
  try {
    const rows = async (q: string) => {
      const duck = await p.warehouse.connect();
      try {
        return (await duck.runAndReadAll(q)).getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
      } finally {
        duck.closeSync();
      }
    };
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    await sql.unsafe(`
      UPDATE prices SET ratio = 'Infinity' WHERE id = 3;
      INSERT INTO prices VALUES (4, 'NaN', 123456789012345678901, NULL);
      INSERT INTO prices VALUES (5, 5.00, '-Infinity', '{2.5}');
      UPDATE prices SET atz = '294276-12-31 23:59:59+00' WHERE id = 2;`);
    await waitFor(async () => (await rows('SELECT count(*) FROM prices'))[0]![0] === '5', 20_000, 'the stream went on past the unfit values');
    expect(await rows('SELECT id, CAST(price AS VARCHAR), CAST(ratio AS VARCHAR), CAST(tags AS VARCHAR) FROM prices ORDER BY id')).toEqual([
      ['1', null, '1.500000000000000000', '[1.0, NULL]'],
      ['2', '9.99', null, null],
      ['3', '1.00', null, null],
      ['4', null, null, null],
      ['5', '5.00', null, '[2.5]'],
    ]);
    await waitFor(async () => (await rows('SELECT count(*) FROM _ducktail.unfit_values'))[0]![0] === '10', 20_000, 'the last update applied');
    expect(await rows('SELECT id, CAST("at" AS VARCHAR), CAST(atz AS VARCHAR) FROM prices WHERE id <= 3 ORDER BY id')).toEqual([
      ['1', null, '2026-11-25 10:00:00+00'],
      ['2', 'infinity', null],
      ['3', '0044-03-15 (BC) 00:00:00', null],
    ]);
    const kept = await rows(
      "SELECT table_name, column_name, key, value, lsn = 0 FROM _ducktail.unfit_values ORDER BY key, column_name, lsn",
    );
    expect(kept).toEqual([
      ['public.prices', 'at', '["1"]', '294270-06-01 12:00:00', 'true'],
      ['public.prices', 'price', '["1"]', 'NaN', 'true'],
      ['public.prices', 'tags', '["1"]', '{1.0,NaN}', 'true'],
      ['public.prices', 'atz', '["2"]', '294276-12-31 23:59:59+00', 'false'],
      ['public.prices', 'ratio', '["2"]', '0.1234567890123456789012', 'true'],
      ['public.prices', 'ratio', '["2"]', '0.1234567890123456789012', 'false'], // the update's new row version
      ['public.prices', 'ratio', '["3"]', 'Infinity', 'false'],
      ['public.prices', 'price', '["4"]', 'NaN', 'false'],
      ['public.prices', 'ratio', '["4"]', '123456789012345678901', 'false'],
      ['public.prices', 'ratio', '["5"]', '-Infinity', 'false'],
    ]);
    expect(p.warehouse.stats.unfitValues).toBe(10);
    expect(warnings.some((w) => w.includes('_ducktail.unfit_values'))).toBe(true);
    // A fitting value later replaces the NULL as any update does.
    await sql`UPDATE prices SET price = 7.25 WHERE id = 1`;
    await waitFor(async () => (await rows('SELECT CAST(price AS VARCHAR) FROM prices WHERE id = 1'))[0]![0] === '7.25', 20_000, 'updated');
    expect(p.status.restarts).toBe(0);
  } finally {
    await p.stop();
    await sql.end({ timeout: 2 });
  }
});
