/**
 * The crash/fault soak (issue 12 part 4). The orders workload runs against a PostgreSQL of its own
 * while ducktail (a real `ducktail run` process, Kafka bus on the librdkafka mock, cold tier on
 * s3rver) is killed with kill -9 at random moments, PostgreSQL is restarted, the mock's brokers go
 * down and up, and s3rver is stopped during archive passes. Then the workload stops, ducktail catches
 * up, and `verify` compares the warehouse with the source row by row and change by change.
 * The schedule comes from one seed: the same seed replays the same faults in the same order with the
 * same pauses (the database's own timing and random() still vary).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { freePort } from '../../src/demo/postgres.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { connectSql } from '../../src/source/index.ts';
import { type KafkaMock, startKafkaMock } from '../support/kafka.ts';
import { seeded, soakApi, writeSoakConfig } from './config.ts';
import { installAudit, seedOldOrders, startOldOrders } from './load.ts';
import { runFaults, type FaultCounts, type SoakEnv } from './faults.ts';
import { DucktailProcess, SOAK_APP, startSoakPostgres, startSoakS3 } from './services.ts';
import { checksums, type SoakVerdict, verify } from './verify.ts';

export interface SoakOptions {
  seed: number;
  kills: number;
  pgRestarts: number;
  /** Rounds of pg_terminate_backend (default: as many as pgRestarts). */
  pgTerminations?: number;
  brokerOutages: number;
  s3Outages: number;
  bus: 'kafka' | 'inline';
  /** Old orders in the source before ducktail's first start (its initial copy, killed once). */
  seedRows: number;
  /** Workload operations per second. */
  rate: number;
  /** Pause between two faults, ms (drawn uniformly). */
  gapMs: [number, number];
  /** How long ducktail may take to catch up at the end. */
  catchUpMs: number;
  log: (line: string) => void;
  /** Keep the working folder (PostgreSQL, warehouse, ducktail.log) even when the soak passes. */
  keep?: boolean;
}

export interface SoakResult extends FaultCounts {
  seed: number;
  bus: string;
  seconds: number;
  caughtUp: boolean;
  cleanExit: number | null;
  unexpectedExits: string[];
  /** Uncaught errors ducktail printed and survived (reported, not a failure of the soak: the data checks decide). */
  uncaughtInDucktail: string[];
  workload: { orders: number; updates: number; cancels: number; oldInserts: number; oldUpdates: number; oldDeletes: number; failedTicks: number };
  verdict: SoakVerdict;
  /** The first kill -9, during the initial copy: when, and how many of the seeded rows the warehouse showed then. */
  copyKill?: { ms: number; target: number; visible: number; of: number };
  dir: string;
  /** 0 lost, 0 duplicated, caught up, no hang, no unexpected exit. */
  passed: boolean;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const started = Date.now();
  const random = seeded(o.seed);
  const dir = mkdtempSync(join(tmpdir(), 'ducktail-soak-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach its data directory
  o.log(`soak: seed ${o.seed}, bus ${o.bus}, folder ${dir}`);
  const pg = await startSoakPostgres(dir);
  const s3 = await startSoakS3(dir);
  let kafka: KafkaMock | null = null;
  let sql: Sql | null = null;
  let ducktail: DucktailProcess | null = null;
  const stopLoad = new AbortController();
  let loads: Promise<void>[] = [];
  let passed = false;
  try {
    const prefix = 'soak';
    if (o.bus === 'kafka') {
      kafka = await startKafkaMock({ brokers: 3 });
      await kafka.createTopic(`${prefix}.public.orders`, 3, 3);
      await kafka.createTopic(`${prefix}-dead-letter`, 1, 3);
    }
    // Named, so that the pg_terminate_backend fault spares the soak's own writers and checks: postgres.js
    // under Bun may never answer again on a pool whose connections were terminated (pgjs-closed-socket.ts).
    const u = new URL(pg.url);
    u.searchParams.set('application_name', SOAK_APP);
    sql = connectSql(u.toString(), { max: 4 });
    await applyDemoSchema(sql);
    await seedOldOrders(sql, o.seedRows, random);
    const port = await freePort();
    const api = soakApi(`http://127.0.0.1:${port}`);
    const config = writeSoakConfig({ dir, url: pg.url, port, kafka: kafka?.bootstrap ?? null, prefix, s3 });
    ducktail = new DucktailProcess(config, dir, join(dir, 'ducktail.log'));
    ducktail.spawn();
    // The first kill lands in the middle of the initial copy: once the warehouse shows a seeded share
    // (10-60%) of the seeded rows, so the copy is in flight (a copy killed through Kafka starts over while
    // the first attempt's events are still on the topic: history must still hold each position once).
    const copyKillAt = Math.max(1, Math.round(o.seedRows * (0.1 + random() * 0.5)));
    const spawnedAt = Date.now();
    let copiedBefore = 0;
    await waitUntil(async () => (copiedBefore = await countOrders(api)) >= copyKillAt, 180_000, `${copyKillAt} copied rows`, 50);
    await ducktail.kill9();
    const copyKill = { ms: Date.now() - spawnedAt, target: copyKillAt, visible: copiedBefore, of: o.seedRows };
    o.log(`soak: kill -9 ducktail during its initial copy, ${copyKill.ms} ms after its first start (${copiedBefore} of ${o.seedRows} rows visible, aimed at ${copyKillAt})`);
    ducktail.spawn();
    await waitUntil(async () => (await api.answering()) && (await countOrders(api)) >= o.seedRows, 180_000, 'the initial copy');
    await installAudit(sql);

    let failedTicks = 0;
    const work = createWorkload(sql, { rate: o.rate, signal: stopLoad.signal, random: seeded(o.seed + 1), onError: () => failedTicks++ });
    const old = startOldOrders(sql, { tickMs: 400, random: seeded(o.seed + 2), signal: stopLoad.signal });
    loads = [work.done, old.done];

    const env: SoakEnv = { pg, s3, kafka, ducktail, api, log: o.log };
    const counts = await runFaults(env, o, random);

    // Heal everything, stop the load, let ducktail catch up.
    await s3.start();
    if (kafka) await kafka.brokerUp(-1);
    ducktail.reviveIfDead();
    await Bun.sleep(1000);
    stopLoad.abort();
    await Promise.all(loads);
    loads = [];
    const caughtUp = await waitUntil(
      async () => {
        ducktail!.reviveIfDead();
        if (!(await api.answering())) return false;
        const s = await checksums(sql!, api.query);
        return s.source === s.mirror;
      },
      o.catchUpMs,
      'catch-up',
    ).then(
      () => true,
      () => false,
    );
    // One more archive pass with every service up: it must succeed and change nothing visible.
    let finalArchive = 'skipped (not caught up)';
    if (caughtUp) {
      const r = await api.archive(AbortSignal.timeout(120_000)).catch((e: unknown) => ({ moved: [], errors: [String(e)] }));
      finalArchive = r.errors.length === 0 ? `ok, ${r.moved.length} files moved` : `FAILED: ${r.errors.join('; ')}`;
      if (r.errors.length > 0) counts.archiveHangsOrFailures++;
    }
    o.log(`soak: final archive pass ${finalArchive}`);
    const verdict = await verify(sql, api.query);
    const cleanExit = await ducktail.stop();
    const w = work.stats();
    const os = old.stats();
    const result: SoakResult = {
      seed: o.seed,
      bus: o.bus,
      seconds: Math.round((Date.now() - started) / 1000),
      ...counts,
      kills: counts.kills + 1,
      killsDuringFaults: counts.killsDuringFaults + 1,
      caughtUp,
      cleanExit,
      unexpectedExits: ducktail.unexpectedExits,
      uncaughtInDucktail: ducktail.uncaughtErrors(),
      workload: {
        orders: w.orders,
        updates: w.updates,
        cancels: w.cancels,
        oldInserts: os.inserts,
        oldUpdates: os.updates,
        oldDeletes: os.deletes,
        failedTicks: failedTicks + os.failedTicks,
      },
      verdict,
      copyKill,
      dir,
      passed: false,
    };
    const v = verdict;
    result.passed =
      caughtUp &&
      cleanExit === 0 &&
      result.unexpectedExits.length === 0 &&
      counts.archiveHangsOrFailures === 0 &&
      v.rowsLost + v.rowsDiffering + v.rowsExtra + v.changesLost + v.changesDuplicated + v.duplicatePositions + v.seqGaps + v.misordered === 0 &&
      v.copyPositionsTwice + v.copyPositionsMissing === 0 &&
      v.transactionsSource === v.transactionsHistory &&
      v.sourceMd5 === v.mirrorMd5;
    passed = result.passed;
    if (!passed) o.log(`soak: ducktail's last log lines:\n${ducktail.tail(40)}`);
    return result;
  } catch (e) {
    o.log(`soak: aborted: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    if (ducktail) o.log(`soak: ducktail's last log lines:\n${ducktail.tail(40)}`);
    throw e;
  } finally {
    stopLoad.abort();
    await Promise.all(loads).catch(() => {});
    if (ducktail?.alive) await ducktail.stop(10_000);
    await sql?.end({ timeout: 2 }).catch(() => {});
    await kafka?.stop();
    await s3.stop();
    await pg.stop();
    if (passed && !o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

async function countOrders(api: ReturnType<typeof soakApi>): Promise<number> {
  try {
    return Number((await api.query('SELECT count(*) FROM orders'))[0]![0]);
  } catch {
    return 0;
  }
}

/** Polls `check` (errors count as false) until true; throws after `ms`. */
export async function waitUntil(check: () => Promise<boolean>, ms: number, what: string, everyMs = 250): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await Bun.sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** The printed summary. */
export function formatResult(r: SoakResult): string {
  const v = r.verdict;
  const w = r.workload;
  return [
    `soak ${r.passed ? 'PASSED' : 'FAILED'}: seed ${r.seed}, bus ${r.bus}, ${r.seconds} s (replay: --seed ${r.seed})`,
    `  kills survived:       ${r.kills} (${r.killsDuringFaults} of them during the first start or initial copy, an archive pass, a broker outage or a PostgreSQL outage)`,
    `  PostgreSQL restarts:  ${r.pgRestarts}; connections terminated (pg_terminate_backend) ${r.pgTerminations} times`,
    `  broker outages:       ${r.brokerOutages}`,
    `  S3 outages:           ${r.s3Outages} (each during an archive pass; ${r.s3OutagesHitCold} hit the pass's cold step)`,
    `  archive passes:       ${r.archivePasses} (${r.archivePassErrors} reported an error, as expected during an outage; ${r.archiveHangsOrFailures} hung or failed with S3 up)`,
    `  workload:             ${w.orders} orders, ${w.updates} status moves, ${w.cancels} cancellations, old orders ${w.oldInserts}/${w.oldUpdates}/${w.oldDeletes} (ins/upd/del), ${w.failedTicks} ticks failed while PostgreSQL was down`,
    `  caught up:            ${r.caughtUp ? 'yes' : 'NO (timed out)'}; clean stop exit code ${r.cleanExit}; unexpected exits ${r.unexpectedExits.length}${r.unexpectedExits.length ? ` (${r.unexpectedExits.join(', ')})` : ''}`,
    `  uncaught errors:      ${r.uncaughtInDucktail.length} printed by ducktail, which went on${r.uncaughtInDucktail.length ? ` (${[...new Set(r.uncaughtInDucktail)].join(' | ')})` : ''}`,
    `  rows compared:        ${v.rowsCompared} (md5 source ${v.sourceMd5}, warehouse ${v.mirrorMd5})`,
    `  rows lost:            ${v.rowsLost} (differing ${v.rowsDiffering})`,
    `  rows duplicated:      ${v.rowsExtra}`,
    `  changes:              ${v.changesExpected} audited in the source, ${v.changesInHistory} in history; ${v.transactionsSource} source transactions, ${v.transactionsHistory} lsns in history`,
    `  writers' own count:   ${w.orders + w.updates + w.cancels + w.oldInserts + w.oldUpdates + w.oldDeletes} changes (a tick whose commit failed may be counted yet rolled back; the audit is the truth)`,
    `  changes lost:         ${v.changesLost}`,
    `  changes duplicated:   ${v.changesDuplicated} ((lsn, seq) stored twice: ${v.duplicatePositions}; lsns with a seq gap: ${v.seqGaps}; orders misordered: ${v.misordered})`,
    `  initial copy:         ${v.copiedOrders} orders copied ('R' in history), ${v.copiedTwice} of them copied twice` +
      (v.copyPositionsTwice === undefined ? '' : `; copy (lsn, seq) stored twice: ${v.copyPositionsTwice}; the last copy ${v.lastCopyRows} rows of ${v.lastCopyOrders} orders, ${v.copyPositionsMissing} seqs missing`),
    ...(r.copyKill ? [`  killed in the copy:   ${r.copyKill.ms} ms after the first start, ${r.copyKill.visible} of ${r.copyKill.of} seeded rows in the warehouse then`] : []),
    ...v.examples.map((e) => `    e.g. ${e}`),
    r.passed ? '' : `  kept for inspection: ${r.dir} (ducktail.log there)`,
  ].join('\n');
}
