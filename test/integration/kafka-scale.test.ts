/**
 * Scaling by config: two ducktail processes on one Kafka cluster. Instance 0 reads the slot and
 * consumes partitions 0 and 2; instance 1 has `source.enabled = false` and consumes 1 and 3.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { freePort } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { apiClient, sourceOrders, spawnDucktail, waitReady } from '../support/ducktail-process.ts';
import { startPostgres } from '../support/postgres.ts';
import { waitFor } from './compare.ts';

let dir: string;
let sql: Sql;
let url: string;
let kafka: KafkaMock;
const PREFIX = 'scale';

beforeAll(async () => {
  const pg = await startPostgres();
  url = await pg.createDatabase(`it_kscale_${process.pid}`);
  sql = connectSql(url, { max: 4 });
  await applyDemoSchema(sql);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-kscale-'));
  kafka = await startKafkaMock({ brokers: 3 });
  const tables = (await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`) as unknown as { tablename: string }[];
  for (const { tablename } of tables) await kafka.createTopic(`${PREFIX}.public.${tablename}`, 4, 3);
  await kafka.createTopic(`${PREFIX}-dead-letter`, 1, 3);
}, 300_000);

afterAll(async () => {
  await sql?.end();
  await kafka?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The config of instance `n` of 2: only the [bus] instance number and source.enabled differ. */
function config(n: number, port: number): string {
  const path = join(dir, `ducktail-${n}.toml`);
  writeFileSync(
    path,
    `[source]\nurl = "${url}"\nslot = "scale_slot"\npublication = "scale_pub"\nstatus_interval_ms = 500\nenabled = ${n === 0}\n` +
      `[bus]\nkind = "kafka"\nbrokers = ${JSON.stringify(kafka.bootstrap)}\ntopic_prefix = "${PREFIX}"\npartitions = 4\n` +
      `instances = 2\ninstance = ${n}\nidempotent = false\n` +
      `[warehouse]\npath = "${join(dir, `w${n}.duckdb`)}"\nbatch_rows = 500\nbatch_ms = 50\nmemory_limit = "256MB"\n` +
      `[tiering]\nwarm_dir = "${join(dir, `warm${n}`)}"\ncold_url = "file://${join(dir, `cold${n}`)}"\n` +
      `[api]\nlisten = "127.0.0.1:${port}"\n[log]\nlevel = "warn"\n`,
  );
  return path;
}

test('two instances split the partitions by config and together hold every row exactly once', async () => {
  const ports = [await freePort(), await freePort()];
  const apis = ports.map((p) => apiClient(`http://127.0.0.1:${p}`));
  const stopLoad = new AbortController();
  const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal });
  await Bun.sleep(500);
  const procs = [0, 1].map((n) => spawnDucktail(['run', '--config', config(n, ports[n]!)], { cwd: dir }));
  try {
    await Promise.all(procs.map((p, i) => waitReady(p, apis[i]!)));
    await Bun.sleep(2000);
    stopLoad.abort();
    await load.done;
    expect(load.stats().updates).toBeGreaterThan(0);

    const expected = await sourceOrders(sql);
    const together = async () => {
      const rows = [...(await apis[0]!.orders()), ...(await apis[1]!.orders())];
      return rows.sort((a, b) => Number(a[0]) - Number(b[0]));
    };
    // An instance that has not applied its first batch yet has no `orders` table: not equal yet, keep waiting.
    const same = async () => JSON.stringify(await together().catch(() => [])) === JSON.stringify(expected);
    await waitFor(same, 60_000, 'both mirrors = source').catch(() => {});
    expect(await together()).toEqual(expected);
    const [a, b] = [await apis[0]!.count('orders'), await apis[1]!.count('orders')];
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    for (const api of apis) expect(await api.duplicateChanges('orders')).toBe(0);

    // Each API says which partitions it holds.
    for (const [n, port] of ports.entries()) {
      const status = (await (await fetch(`http://127.0.0.1:${port}/v1/status`)).json()) as {
        bus: { consumer: { partitions: { topic: string; partition: number; lag: string }[] } };
      };
      const held = status.bus.consumer.partitions.filter((p) => p.topic === `${PREFIX}.public.orders`).map((p) => p.partition);
      expect(held.sort()).toEqual(n === 0 ? [0, 2] : [1, 3]);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain(`ducktail_bus_consumer_lag_messages{topic="${PREFIX}.public.orders",partition="${n}"} 0`);
      expect(metrics).toContain('ducktail_bus_dead_letters 0');
    }
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    expect(await procs[0]!.exited).toBe(0);
    expect(await procs[1]!.exited).toBe(0);
  }
}, 180_000);
