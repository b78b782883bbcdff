/**
 * Broker faults through the librdkafka mock's fault injection, with a live workload. The outage lasts
 * 3 s by default; KAFKA_FAULT_FULL=1 runs the full 30 s.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { connectSql } from '../../src/source/index.ts';
import { KAFKA_API_KEY, KAFKA_ERROR, startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';
import { expectInSync, historyDuplicates, type KafkaRunning, startKafkaPipeline } from './kafka-harness.ts';

const OUTAGE_MS = process.env.KAFKA_FAULT_FULL === '1' ? 30_000 : 3_000;
/** Both modes of ducktail's record batches: producer id -1 (`idempotent = false`) and idempotent (producer id and sequences, the default). */
const MODES = [
  { idempotent: false, prefix: 'faults' },
  { idempotent: true, prefix: 'faultsidem' },
] as const;
let url: string;
let sql: Sql;
let dir: string;
let kafka: KafkaMock;
let p: KafkaRunning | undefined;

beforeAll(async () => {
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_kfaults_${process.pid}`);
  sql = connectSql(url, { max: 3 });
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kfaults-'));
  kafka = await startKafkaMock({ brokers: 3 });
  for (const { prefix } of MODES) {
    await kafka.createTopic(`${prefix}.public.orders`, 3, 3);
    await kafka.createTopic(`${prefix}-dead-letter`, 1, 3);
  }
  await sql.unsafe(`
    CREATE TABLE orders (id bigint PRIMARY KEY, qty int, note text);
    INSERT INTO orders SELECT g, g % 7, 'row ' || g FROM generate_series(1, 500) g;
  `);
}, 300_000);

afterAll(async () => {
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let next = 100_000;
/** Inserts, updates and deletes in small transactions until stopped. */
function workload(): { stop(): Promise<void> } {
  let running = true;
  const done = (async () => {
    while (running) {
      const id = next;
      next += 20;
      await sql.begin(async (tx) => {
        await tx`INSERT INTO orders SELECT g, 1, 'load' FROM generate_series(${id}::bigint, ${id + 19}::bigint) g`;
        await tx`UPDATE orders SET qty = qty + 1 WHERE id = ${id - 20} OR id = ${(id % 500) + 1}`;
        await tx`DELETE FROM orders WHERE id = ${id - 39}`;
      });
      await Bun.sleep(10);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Watches the pipeline while a fault lasts: the bus says it is stalled, the source holds at most its in-flight limit. */
async function during(fault: () => Promise<void>, heal: () => Promise<void>, expectStall: boolean): Promise<void> {
  const load = workload();
  await Bun.sleep(300);
  await fault();
  let sawNotReady = false;
  let maxInflight = 0;
  const until = Date.now() + OUTAGE_MS;
  while (Date.now() < until) {
    if (p!.bus.readiness?.().ready === false) sawNotReady = true;
    maxInflight = Math.max(maxInflight, p!.status!.inflightBatches);
    await Bun.sleep(50);
  }
  await heal();
  await load.stop();
  // Memory bounded: the socket is not read past the batches the bus takes ahead (Kafka: 4).
  expect(maxInflight).toBeLessThanOrEqual(p!.bus.publishAhead ?? 2);
  if (expectStall) expect(sawNotReady).toBe(true);
  await waitFor(async () => p!.bus.readiness?.().ready === true, 30_000, 'bus ready again');
  await expectInSync(sql, [p!.warehouse], 'orders', 60_000);
  expect(await historyDuplicates(p!.warehouse, 'orders')).toBe(0);
}

/** Every event on `topic`: its partition, offset, and the change it carries (partition, lsn, seq, op, row). */
async function topicEvents(topic: string): Promise<{ partition: number; offset: number; change: string }[]> {
  const proc = Bun.spawn(['kcat', '-C', '-b', kafka.bootstrap.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p\t%o\t%s\n'], { stdout: 'pipe', stderr: 'pipe' });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect(code).toBe(0);
  return out
    .trimEnd()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [p, o, value] = line.split('\t') as [string, string, string];
      const event = JSON.parse(value) as { payload: { op: string; before: unknown; after: unknown; source: { lsn: number; seq: number } } };
      const e = event.payload;
      return { partition: Number(p), offset: Number(o), change: `${p}|${e.source.lsn}|${e.source.seq}|${e.op}|${JSON.stringify(e.before)}|${JSON.stringify(e.after)}` };
    });
}

for (const { idempotent, prefix } of MODES) {
  const TOPIC = `${prefix}.public.orders`;
  describe(`Kafka faults (outage ${OUTAGE_MS} ms, ${idempotent ? 'idempotent producer' : 'non-idempotent producer'})`, () => {
    afterAll(async () => {
      await p?.stop();
      p = undefined;
    });

    test('Kafka unreachable at start: the pipeline waits, says so in readiness, then catches up', async () => {
      await kafka.brokerDown(-1);
      p = await startKafkaPipeline({ dir, url, slot: `kfaults_${prefix}`, file: `${prefix}.duckdb`, bootstrap: kafka.bootstrap, prefix, bus: { idempotent } });
      await waitFor(async () => p!.bus.readiness?.().ready === false, 20_000, 'bus not ready');
      expect(p.warehouse.stats.rowsApplied).toBe(0);
      await kafka.brokerUp(-1);
      await waitFor(async () => p!.status!.phase === 'streaming', 60_000, 'streaming');
      await expectInSync(sql, [p.warehouse], 'orders', 60_000);
    }, 120_000);

    test('a broker down: publishing stalls with backpressure, resumes by itself, nothing lost or twice', async () => {
      await kafka.setLeader(TOPIC, 0, 1);
      await during(() => kafka.brokerDown(1), () => kafka.brokerUp(1), true);
    }, 180_000);

    test('leader changes under load', async () => {
      await during(
        async () => {
          await kafka.setLeader(TOPIC, 0, 2);
          await kafka.setLeader(TOPIC, 1, 3);
          await kafka.setLeader(TOPIC, 2, 1);
        },
        async () => kafka.setLeader(TOPIC, 0, 3),
        false,
      );
    }, 180_000);

    test('injected produce and fetch errors', async () => {
      await during(
        async () => {
          await kafka.pushErrors(KAFKA_API_KEY.Produce, [
            KAFKA_ERROR.NOT_ENOUGH_REPLICAS,
            KAFKA_ERROR.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            KAFKA_ERROR.REQUEST_TIMED_OUT,
            KAFKA_ERROR.NOT_LEADER_OR_FOLLOWER,
            KAFKA_ERROR.TRANSPORT,
            KAFKA_ERROR.NOT_ENOUGH_REPLICAS,
          ]);
          await kafka.pushErrors(KAFKA_API_KEY.Fetch, [KAFKA_ERROR.NOT_LEADER_OR_FOLLOWER, KAFKA_ERROR.TRANSPORT, KAFKA_ERROR.UNKNOWN_TOPIC_OR_PARTITION]);
        },
        async () => {
          await kafka.clearErrors(KAFKA_API_KEY.Produce);
          await kafka.clearErrors(KAFKA_API_KEY.Fetch);
        },
        false,
      );
    }, 180_000);

    test('produce errors at some leaders of a send: the batches they acknowledged are not written again (no event twice on the topic)', async () => {
      // One leader per partition, so a send is one request per broker and an error fails only some of its partitions.
      for (const [partition, broker] of [[0, 1], [1, 2], [2, 3]] as const) await kafka.setLeader(TOPIC, partition, broker);
      const before = new Map<number, number>();
      for (const e of await topicEvents(TOPIC)) before.set(e.partition, Math.max(before.get(e.partition) ?? 0, e.offset + 1));
      const E = KAFKA_ERROR;
      // 0 = answered; runs of one error longer than the client's own retries (3 attempts) too.
      const errors = [0, E.NOT_ENOUGH_REPLICAS, 0, 0, E.TRANSPORT, 0, E.REQUEST_TIMED_OUT, E.REQUEST_TIMED_OUT, E.REQUEST_TIMED_OUT, E.REQUEST_TIMED_OUT, 0, 0, E.NOT_ENOUGH_REPLICAS, 0, E.TRANSPORT, 0];
      await during(
        async () => {
          for (let i = 0; i < 4; i++) await kafka.pushErrors(KAFKA_API_KEY.Produce, errors); // queued one after another
        },
        () => kafka.clearErrors(KAFKA_API_KEY.Produce),
        false,
      );
      const events = (await topicEvents(TOPIC)).filter((e) => e.offset >= (before.get(e.partition) ?? 0));
      expect(events.length).toBeGreaterThan(100);
      const twice = events.length - new Set(events.map((e) => e.change)).size;
      expect({ events: events.length, twice }).toEqual({ events: events.length, twice: 0 });
    }, 180_000);
  });
}
