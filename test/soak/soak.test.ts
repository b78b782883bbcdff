// The crash/fault soak, short form (CI): a few kill -9s, PostgreSQL restarts, broker outages and S3
// outages during archive passes under the orders workload; then the warehouse must equal the source
// row for row and history must hold every source change exactly once. SOAK_SEED=N replays a schedule;
// the long form is `bun bench/soak.ts --kills 50` (README, "Soak").
import { expect, test } from 'bun:test';
import { formatResult, runSoak } from './soak.ts';

test('soak (short): kill -9, PostgreSQL restarts, broker and S3 outages lose nothing and duplicate nothing', async () => {
  const seed = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : Math.floor(Math.random() * 2 ** 31);
  const lines: string[] = [];
  console.log(`soak seed ${seed} (SOAK_SEED=${seed} replays it)`);
  const result = await runSoak({
    seed,
    kills: 4,
    pgRestarts: 2,
    brokerOutages: 2,
    s3Outages: 2,
    bus: 'kafka',
    rate: 100,
    seedRows: 10_000,
    gapMs: [300, 2500],
    catchUpMs: 90_000,
    log: (line) => lines.push(line),
  }).catch((e: unknown) => {
    console.log(lines.join('\n'));
    throw e;
  });
  const summary = formatResult(result);
  console.log(summary);
  if (!result.passed) console.log(lines.join('\n'));
  expect(result.kills).toBeGreaterThanOrEqual(4);
  expect(result.pgRestarts).toBe(2);
  expect(result.brokerOutages).toBe(2);
  expect(result.s3Outages).toBe(2);
  expect(result.verdict.rowsCompared).toBeGreaterThan(11_000);
  expect(result.verdict.copiedOrders).toBeGreaterThan(9_000);
  expect(result.verdict.changesExpected).toBeGreaterThan(1000);
  expect(result.caughtUp).toBe(true);
  expect(result.unexpectedExits).toEqual([]);
  expect(result.archiveHangsOrFailures).toBe(0);
  expect(result.verdict.rowsLost + result.verdict.rowsDiffering + result.verdict.rowsExtra).toBe(0);
  expect(result.verdict.changesLost).toBe(0);
  expect(result.verdict.changesDuplicated).toBe(0);
  expect(result.verdict.seqGaps + result.verdict.misordered).toBe(0);
  expect(result.verdict.transactionsHistory).toBe(result.verdict.transactionsSource);
  expect(result.cleanExit).toBe(0);
  expect(result.passed).toBe(true);
}, 240_000);
