import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.ts';
import { createTiering } from '../../src/tiering/index.ts';
import { createWarehouse, type Warehouse } from '../../src/warehouse/index.ts';
import { type S3Server, startS3 } from '../support/s3.ts';
import { ORDERS, orderChange, tieringOptionsIn } from '../support/tiering.ts';

// S3 stops in the middle of a pass (after a cold file is uploaded and switched, before the next
// upload), then comes back: nothing is lost, the rest moves on the next pass, and after the local
// cache is wiped every cold file is read back from S3.
let dir = '';
let w: Warehouse | null = null;
let s3: S3Server | null = null;
afterEach(async () => {
  await w?.close();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const TOTALS = 'SELECT count(*), count(DISTINCT order_id), sum(price)::VARCHAR FROM orders';

test('S3 stopped mid-pass and restarted: nothing lost, retried next pass', async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-tier-s3-'));
  const s3dir = join(dir, 's3');
  s3 = await startS3({ directory: s3dir });
  const port = Number(new URL(s3.endpoint).port);
  w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 's' });
  const changes = Array.from({ length: 730 }, (_, i) => orderChange('I', i + 1, `${(i % 97) + 1}.25`, i, 100n + BigInt(i), 0));
  await w.apply({ tables: new Map([['public.orders', ORDERS]]), changes });
  const totals = async () => {
    const c = await w!.connect();
    try {
      return (await c.runAndReadAll(TOTALS)).getRows()[0]!.map(String);
    } finally {
      c.closeSync();
    }
  };
  const before = await totals();
  const opts = tieringOptionsIn(dir, {
    coldUrl: `s3://${s3.bucket}/lake`,
    s3: { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  // Each cold move opens one reader connection to verify its upload: the second one stops S3 first.
  let verifying = 0;
  let armed = false;
  const tiering = createTiering(opts, {
    exclusive: (fn) => w!.exclusive(fn),
    connect: async () => {
      if (armed && ++verifying === 2) await s3!.stop();
      return w!.connect();
    },
    log: createLogger('error'),
  });
  armed = true;
  const first = await tiering.archive();
  armed = false;
  const cold1 = first.moved.filter((m) => m.to === 'cold').length;
  expect(cold1).toBe(2);
  expect(first.errors.join()).toContain('COLD_UNREACHABLE');
  expect(await totals()).toEqual(before);

  s3 = await startS3({ directory: s3dir, port });
  const second = await tiering.archive();
  expect(second.errors).toEqual([]);
  expect(second.moved.filter((m) => m.to === 'cold').length).toBeGreaterThan(5);
  expect(await totals()).toEqual(before);

  // Every live cold file is in S3; wiped cache, the files come back from there.
  const c = await w.connect();
  const cold = (await c.runAndReadAll("SELECT location FROM _ducktail.tier_files WHERE tier = 'cold' AND retired_pass IS NULL")).getRows();
  c.closeSync();
  for (const [location] of cold) expect(await s3.client.exists(String(location).slice(`s3://${s3.bucket}/`.length))).toBe(true);
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  await tiering.prepareQuery('select * from orders');
  expect(await totals()).toEqual(before);
}, 60_000);
