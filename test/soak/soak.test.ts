// The crash/fault soak, short form (CI): a few kill -9s, PostgreSQL restarts, broker outages and S3
// outages during archive passes under the orders workload (the first kill in the middle of the initial copy
// of 30,000 orders through Kafka); then the warehouse must equal the source
// row for row and history must hold every source change exactly once. SOAK_SEED=N replays a schedule;
// the long form is `bun bench/soak.ts --kills 50` (README, "Soak"). The soak runs as a process of its
// own: its PostgreSQL client (postgres.js) throws uncaught errors when the server restarts under it,
// which bun test would blame on this test.
import { expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SoakResult } from './soak.ts';

const ROOT = join(import.meta.dir, '../..');

test('soak (short): kill -9, PostgreSQL restarts, broker and S3 outages lose nothing and duplicate nothing', async () => {
  const seed = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`soak seed ${seed} (SOAK_SEED=${seed} replays it)`);
  const out = mkdtempSync(join(tmpdir(), 'ducktail-soak-result-'));
  const json = join(out, 'result.json');
  try {
    const args = ['--seed', String(seed), '--kills', '4', '--pg', '2', '--brokers', '2', '--s3', '2', '--rate', '100', '--gap-ms', '300-2500'];
    const proc = Bun.spawn([process.execPath, join(ROOT, 'bench/soak.ts'), ...args, '--json', json], {
      cwd: ROOT,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) console.log(`${stdout}\n${stderr}`);
    else console.log(stdout.slice(stdout.indexOf('soak PASSED')));
    const result = JSON.parse(readFileSync(json, 'utf8')) as SoakResult;
    expect(result.kills).toBeGreaterThanOrEqual(5); // 4 scheduled, 1 during the initial copy, more during outages
    expect(result.pgRestarts).toBe(2);
    expect(result.pgTerminations).toBe(2);
    expect(result.brokerOutages).toBe(2);
    expect(result.s3Outages).toBe(2);
    expect(result.verdict.rowsCompared).toBeGreaterThan(31_000);
    expect(result.verdict.copiedOrders).toBe(30_000);
    // The first kill landed while the initial copy through Kafka was in flight, and its restart left every
    // copy position in history once (a copy restarted from scratch used to store its rows' (lsn, seq) twice).
    expect(result.copyKill!.visible).toBeGreaterThan(0);
    expect(result.copyKill!.visible).toBeLessThan(30_000);
    expect(result.verdict.copyPositionsTwice).toBe(0);
    expect(result.verdict.lastCopyOrders).toBe(30_000); // the copy that finished holds every seeded order once
    expect(result.verdict.lastCopyRows).toBe(30_000);
    expect(result.verdict.copyPositionsMissing).toBe(0);
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
    expect(code).toBe(0);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 300_000);
