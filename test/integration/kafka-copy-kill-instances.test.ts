import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { freePort } from '../../src/demo/postgres.ts';
import { apiClient, spawnDucktail, writeApplianceConfig } from '../support/ducktail-process.ts';
import type { KafkaMock } from '../support/kafka.ts';
import { waitFor } from './compare.ts';
import { copyHistory, itemsOnKafka } from './kafka-copy.ts';

// kafka-copy-kill.test.ts with two instances splitting the partitions (docs/KAFKA.md, "Two instances
// splitting the partitions"): instance 0 reads the slot and owns partitions 0 and 2, instance 1 only consumes
// (source.enabled = false) partitions 1 and 3. Instance 0 is killed with kill -9 in the middle of the initial
// copy and copies again from zero from a new slot; instance 1 runs throughout and sees both copies. Each
// instance numbers the copy rows it applies from its own history (src/warehouse/copy-seq.ts): each history
// holds no (_lsn, _seq) twice and none missing, and the rows of the last copy of the two hold every key once.

const ROWS = 60_000;
const PREFIX = 'kcopy2';
const SLOT = 'kafka_copy_kill_two';

let dir: string;
let sql: Sql;
let kafka: KafkaMock;
const configs: string[] = [];
const bases: string[] = [];
const procs: (ReturnType<typeof spawnDucktail> | undefined)[] = [];

beforeAll(async () => {
  let url: string;
  ({ url, sql, kafka } = await itemsOnKafka(`it_kafka_copy_kill_two_${process.pid}`, ROWS, PREFIX, 4));
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kafka-copy-kill-two-'));
  const brokers = kafka.bootstrap.map((b) => `"${b}"`).join(', ');
  for (const n of [0, 1]) {
    const own = join(dir, `i${n}`);
    mkdirSync(own);
    const port = await freePort();
    bases.push(`http://127.0.0.1:${port}`);
    // Instance 1 is not limited by instance 0's producer (max_lag counts the instance's own partitions):
    // gzip keeps the mock's 5 MB per partition from dropping what it has not read yet.
    configs.push(
      writeApplianceConfig(own, {
        url,
        slot: SLOT,
        port,
        source:
          `enabled = ${n === 0}\ncopy_workers = 2\ncopy_chunk_rows = 1000\n` +
          `[bus]\nkind = "kafka"\nbrokers = [${brokers}]\ntopic_prefix = "${PREFIX}"\npartitions = 4\nreplication_factor = 3\n` +
          `idempotent = false\ncompression = "gzip"\nmax_lag = 3000\ninstances = 2\ninstance = ${n}\n`,
      }),
    );
  }
}, 300_000);

afterAll(async () => {
  for (const p of procs) if (p && p.exitCode === null && p.signalCode === null) p.kill(9);
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Status {
  source: { phase: string; snapshot: { rows: number } | null };
}

async function status(n: number): Promise<Status | null> {
  try {
    return (await (await fetch(`${bases[n]}/v1/status`)).json()) as Status;
  } catch {
    return null;
  }
}

const spawn = (n: number) => (procs[n] = spawnDucktail(['run', '--config', configs[n]!], { cwd: join(dir, `i${n}`) }));

test('two instances, the one reading the slot killed with kill -9 mid-copy: each history holds no (_lsn, _seq) twice or missing, the last copy every key once', async () => {
  spawn(1);
  const reader = spawn(0);
  let rowsAtKill = 0;
  for (const until = Date.now() + 90_000; rowsAtKill < 5_000; await Bun.sleep(10)) {
    if (Date.now() > until || reader.exitCode !== null) throw new Error('the copy did not get under way');
    rowsAtKill = (await status(0))?.source.snapshot?.rows ?? 0;
  }
  const before = (await status(0))?.source.phase;
  reader.kill(9);
  expect(await reader.exited).not.toBe(0);
  expect(before).toBe('snapshot'); // killed in the middle, not after the copy

  spawn(0);
  await waitFor(async () => (await status(0))?.source.phase === 'streaming', 120_000, 'streaming after the restarted copy');
  const digest = 'SELECT count(*)::text, coalesce(sum(qty), 0)::text, coalesce(sum(id), 0)::text FROM items';
  const [want] = await sql.unsafe(digest).values();
  const apis = bases.map((b) => apiClient(b));
  const together = async () => {
    const parts = await Promise.all(apis.map(async (a) => (await a.query(digest).catch(() => [['0', '0', '0']]))[0]!.map(Number)));
    return parts[0]!.map((v, i) => String(v + parts[1]![i]!));
  };
  await waitFor(async () => JSON.stringify(await together()) === JSON.stringify(want), 90_000, 'both mirrors together = source').catch(() => {});
  expect(await together()).toEqual(want!.map(String));
  for (const p of procs) p!.kill('SIGTERM');
  for (const p of procs) expect(await p!.exited).toBe(0);

  let last = [0, 0, 0];
  let interrupted = 0;
  for (const n of [0, 1]) {
    const h = await copyHistory(join(dir, `i${n}`, 'w.duckdb'), SLOT);
    console.log(
      `instance ${n}: ${h.rows} R rows (${h.keys} keys), ${h.twice} (lsn, seq) held twice, ${h.missing} missing; last copy ${h.last[0]} rows (${h.last[1]} keys)`,
    );
    expect(h.twice).toBe(0);
    expect(h.missing).toBe(0);
    // The last copy: the R rows of the latest copy time, all numbered after the interrupted copy's.
    expect(h.last[3]).toBe(1);
    expect(h.last[0]).toBe(h.last[1]);
    last = last.map((v, i) => v + h.last[i]!);
    interrupted += h.rows - h.last[0];
  }
  console.log(`kafka copy kill, two instances: killed at ${rowsAtKill} of ${ROWS} rows published; ${interrupted} rows of the interrupted copy kept`);
  expect(last).toEqual([ROWS, ROWS, Number(want![1])]);
  expect(interrupted).toBeGreaterThan(0);
}, 300_000);
