import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { freePort } from '../../src/demo/postgres.ts';
import { apiClient, spawnDucktail, writeApplianceConfig } from '../support/ducktail-process.ts';
import type { KafkaMock } from '../support/kafka.ts';
import { waitFor } from './compare.ts';
import { copyHistory, itemsOnKafka } from './kafka-copy.ts';

// A kill -9 in the middle of the initial copy through Kafka (bus.kind = "kafka"). The copy's rows travel
// as `r` events, which the warehouse does not record per chunk: the restart copies the table again from
// a new slot (it does not resume at the next chunk, as the inline bus does: copy-resume.test.ts), and the
// mirror ends equal to the source. The history keeps the interrupted copy's `R` rows (what reached Kafka
// before the kill: a partial image as of the first slot's consistent point), and the new copy's `R` rows come
// after them: the source numbers every copy's rows from 0 again, so the warehouse numbers them itself, from one
// past the highest `_seq` at `_lsn` 0 when the new copy's reset is applied, in the order it applies them
// (src/warehouse/copy-seq.ts). No (_lsn, _seq) is held twice, none is missing (0..n-1 at `_lsn` 0), and the new
// copy's rows hold every key once (docs/KAFKA.md, "An interrupted copy in the history"). Before that,
// 5,965-6,973 pairs were held twice.

const ROWS = 60_000;
const PREFIX = 'kcopy';
const SLOT = 'kafka_copy_kill';

let dir: string;
let sql: Sql;
let kafka: KafkaMock;
let configPath: string;
let base: string;
let proc: ReturnType<typeof spawnDucktail> | undefined;

beforeAll(async () => {
  let url: string;
  ({ url, sql, kafka } = await itemsOnKafka(`it_kafka_copy_kill_${process.pid}`, ROWS, PREFIX, 3));
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kafka-copy-kill-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const brokers = kafka.bootstrap.map((b) => `"${b}"`).join(', ');
  // writeApplianceConfig puts `source` at the end of [source]: the [bus] table follows it.
  configPath = writeApplianceConfig(dir, {
    url,
    slot: SLOT,
    port,
    source:
      'copy_workers = 2\ncopy_chunk_rows = 1000\n' +
      `[bus]\nkind = "kafka"\nbrokers = [${brokers}]\ntopic_prefix = "${PREFIX}"\npartitions = 3\nreplication_factor = 3\n` +
      // `idempotent` left at its default (true): the idempotent producer, as a new user runs it.
      'compression = "none"\nmax_lag = 3000\n',
  });
}, 300_000);

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(9);
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Status {
  source: { phase: string; snapshot: { rows: number } | null };
}

async function status(): Promise<Status | null> {
  try {
    return (await (await fetch(`${base}/v1/status`)).json()) as Status;
  } catch {
    return null;
  }
}

test('kill -9 in the middle of a copy through Kafka: the restart copies again from zero, the warehouse ends equal to the source, the history holds no (_lsn, _seq) twice', async () => {
  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  let rowsAtKill = 0;
  for (const until = Date.now() + 90_000; rowsAtKill < 5_000; await Bun.sleep(10)) {
    if (Date.now() > until || proc.exitCode !== null) throw new Error('the copy did not get under way');
    const s = await status();
    if (s?.source.phase !== 'snapshot' && rowsAtKill > 0) break;
    rowsAtKill = s?.source.snapshot?.rows ?? 0;
  }
  const before = (await status())?.source.phase;
  proc.kill(9);
  expect(await proc.exited).not.toBe(0);
  expect(before).toBe('snapshot'); // killed in the middle, not after the copy

  proc = spawnDucktail(['run', '--config', configPath], { cwd: dir });
  // A restart from zero shows a copy that starts again below what the first had reached.
  let restartedBelow = false;
  await waitFor(
    async () => {
      const s = await status();
      if (s?.source.phase === 'snapshot' && (s.source.snapshot?.rows ?? Infinity) < rowsAtKill) restartedBelow = true;
      return s?.source.phase === 'streaming';
    },
    120_000,
    'streaming after the restarted copy',
  );
  const api = apiClient(base);
  const digest = 'SELECT count(*)::text, sum(qty)::text, sum(id)::text FROM items';
  const [want] = await sql.unsafe(digest).values();
  await waitFor(async () => JSON.stringify((await api.query(digest))[0]!.map(String)) === JSON.stringify(want), 60_000, 'caught up').catch(() => {});
  proc.kill('SIGTERM');
  expect(await proc.exited).toBe(0);

  const h = await copyHistory(join(dir, 'w.duckdb'), SLOT);
  expect(h.mirror.slice(0, 3)).toEqual(want!.map(Number));
  expect(h.mirror[3]).toBe(h.mirror[0]!);
  expect(h.keys).toBe(ROWS); // every row of the table has its `R` row; rows of the interrupted copy stay before the reset
  console.log(
    `kafka copy kill: killed at ${rowsAtKill} of ${ROWS} rows published; restart seen copying from below that: ${restartedBelow}; ` +
      `history: ${h.rows} R rows (${h.keys} keys), ${h.resets} T rows, ${h.twice} (lsn, seq) pairs held twice, ${h.missing} missing; ` +
      `the last copy's R rows: ${h.last[0]} (${h.last[1]} keys)`,
  );
  expect(restartedBelow).toBe(true); // the copy started over (else this test no longer covers the case)
  expect(h.rows).toBeGreaterThan(ROWS); // the interrupted copy's rows are in the history too
  expect(h.twice).toBe(0);
  expect(h.missing).toBe(0); // per _lsn, the _seq are 0..n-1 (the soak's check): what reached Kafka of the last send may have gaps
  // The copy that finished (its rows share the copy's start time as `_commit_ts`): one row per key of the
  // source, every `_seq` above those of the interrupted copy.
  expect(h.last).toEqual([ROWS, ROWS, Number(want![1]), 1]);
}, 300_000);
