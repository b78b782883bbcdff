import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, TableSchema } from '../change/index.ts';
import { DAY_MS, firstRow as one, tieringOptionsIn } from '../../test/support/tiering.ts';
import { tempWarehouses } from '../../test/support/temp-warehouses.ts';
import { createLogger } from '../log.ts';
import { createWarehouse } from '../warehouse/index.ts';
import { createTiering } from './index.ts';

const temps = tempWarehouses();

/** events(region text, id bigint, payload text, at timestamptz), keyed by (region, id). */
const EVENTS: TableSchema = {
  schema: 'public',
  table: 'events',
  columns: [
    { key: true, name: 'region', typeOid: 25, typeMod: -1 },
    { key: true, name: 'id', typeOid: 20, typeMod: -1 },
    { key: false, name: 'payload', typeOid: 25, typeMod: -1 },
    { key: false, name: 'at', typeOid: 1184, typeMod: -1 },
  ],
};

test('months are split by bytes (max_file_size), a composite key at row-wise quantiles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-tier-split-'));
  temps.dirs.push(dir);
  const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  temps.open.push(w);
  // 24,000 events in two months 200-260 days ago, ~100 bytes of random text each (~2.4 MB uncompressed).
  const base = Date.now() - 200 * DAY_MS;
  const changes: Change[] = Array.from({ length: 24_000 }, (_, i) => ({
    op: 'I',
    table: 'public.events',
    row: [['eu', 'us', 'ap'][i % 3]!, String(i), Array.from({ length: 8 }, (_, k) => Bun.hash(`${i}:${k}`).toString(36)).join(''), new Date(base - (i % 60) * DAY_MS).toISOString()],
    lsn: 100n + BigInt(i),
    seq: 0,
    commitTimeUs: BigInt(base - 61 * DAY_MS) * 1000n,
  }));
  await w.apply({ tables: new Map([['public.events', EVENTS]]), changes });
  const maxFileBytes = 256 * 1024;
  const tiering = createTiering(
    { ...tieringOptionsIn(dir), warmDays: 5000, maxFileBytes, tables: { 'public.events': { timeColumn: 'at' } } },
    { exclusive: (fn) => w.exclusive(fn), connect: () => w.connect(), log: createLogger('error') },
  );
  await tiering.init();
  const totals = 'SELECT count(*), count(DISTINCT (region, id)), sum(length(payload)) FROM events';
  const before = await one(w, totals);
  const report = await tiering.archive();
  expect(report.errors).toEqual([]);
  expect(await one(w, totals)).toEqual(before);
  // Several files per month, each near or under the size (bytes per row measured on a sample), every row located once.
  const [files, months, biggest, rows] = await one(
    w,
    "SELECT count(*), count(DISTINCT month), max(byte_size), sum(row_count) FROM _ducktail.tier_files WHERE retired_pass IS NULL AND kind = 'current'",
  );
  expect(Number(files)).toBeGreaterThanOrEqual(2 * Number(months) + 1);
  expect(Number(biggest)).toBeLessThan(maxFileBytes * 1.5);
  expect(rows).toBe('24000');
  expect(await one(w, 'SELECT count(*), count(DISTINCT key) FROM _ducktail.tier_locator')).toEqual(['24000', '24000']);
  // Key ranges do not overlap: the files of a month hold disjoint (region, id) ranges, in key order.
  const ranges =
    `SELECT month, filename AS f, min({'r': region, 'i': id}) lo, max({'r': region, 'i': id}) hi ` +
    `FROM read_parquet('${dir}/warm/current/public.events/*/*.parquet', hive_partitioning = true, filename = true) GROUP BY month, filename`;
  expect(await one(w, `WITH r AS (${ranges}) SELECT count(*) FROM r a JOIN r b ON a.month = b.month AND a.f < b.f WHERE NOT (a.hi < b.lo OR b.hi < a.lo)`)).toEqual(['0']);
}, 60_000);
