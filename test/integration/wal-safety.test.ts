// WAL safety: the heartbeat keeps a quiet database's slot advancing while other databases write WAL,
// /v1/status's slot figures are filled, and PostgreSQL restarted under load loses nothing.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { type EmbeddedPostgres, postmaster, startEmbeddedPostgres } from '../../src/demo/postgres.ts';
import { connectSql, readSlot } from '../../src/source/index.ts';
import { parseLsn } from '../../src/source/lsn.ts';
import { startPostgres } from '../support/postgres.ts';
import { expectMirrorEqual, waitFor } from './compare.ts';
import { type InlinePipeline, startInlinePipeline } from './inline-pipeline.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-wal-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach the dedicated cluster's data directory
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function start(url: string, slot: string, heartbeatIntervalS: number): Promise<InlinePipeline> {
  return startInlinePipeline(dir, { url, slot, batchRows: 500, connectTimeoutS: 5, heartbeatIntervalS });
}

test('a quiet database: heartbeats carry the slot (and the warehouse position) past WAL other databases write', async () => {
  const pg = await startPostgres();
  const quietUrl = await pg.createDatabase(`it_quiet_${process.pid}`);
  const busyUrl = await pg.createDatabase(`it_busy_${process.pid}`);
  const q = connectSql(quietUrl, { max: 1 });
  const busy = connectSql(busyUrl, { max: 1 });
  await q`CREATE TABLE calm (id int PRIMARY KEY, v text)`;
  await q`INSERT INTO calm VALUES (1, 'only row')`;
  const p = await start(quietUrl, 'wal_quiet', 1);
  try {
    await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
    await busy`CREATE TABLE noise (id int, pad text)`;
    await busy`INSERT INTO noise SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`;
    const [{ lsn }] = (await busy`SELECT pg_current_wal_lsn()::text AS lsn`) as unknown as [{ lsn: string }];
    const target = parseLsn(lsn);
    // The heartbeat's transaction goes through the pipeline: the warehouse records a position past the noise.
    await waitFor(async () => p.warehouse.progress.current.ackLsn > target, 20_000, 'warehouse position past the other database');
    await waitFor(async () => ((await readSlot(q, 'wal_quiet'))?.confirmedFlushLsn ?? 0n) > target, 20_000, 'slot past the other database');
    expect(p.status.heartbeat.lastLsn).not.toBeNull();
    expect(p.status.heartbeat.error).toBeNull();
    await waitFor(async () => p.status.slot.checkedAt !== null && p.status.slot.lagBytes !== null, 10_000, 'slot health read');
    expect(p.status.slot.walStatus).toMatch(/^(reserved|extended)$/);
    expect(p.status.slot.invalidated).toBeNull();
    expect(p.status.slot.lagBytes!).toBeLessThan(16 * 1024 * 1024);
  } finally {
    await p.stop();
    await q.end();
    await busy.end();
  }
});

test('PostgreSQL restarted twice under load: the stream reconnects and the mirror equals the source row for row', async () => {
  const dataDir = join(dir, 'pg');
  let server: EmbeddedPostgres = await startEmbeddedPostgres({ dir: dataDir, extraFlags: ['-c', 'fsync=off'] });
  const port = server.port;
  const url = server.url;
  let sql: Sql | null = null;
  let p: InlinePipeline | null = null;
  try {
    sql = connectSql(url, { max: 2 });
    await applyDemoSchema(sql);
    const stopLoad = new AbortController();
    let failedTicks = 0;
    const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal, onError: () => failedTicks++ });
    await Bun.sleep(300);
    p = await start(url, 'wal_restart', 1);
    await waitFor(async () => p!.status.phase === 'streaming', 30_000, 'streaming');
    for (let round = 0; round < 2; round++) {
      await Bun.sleep(800);
      const restartsBefore = p.status.restarts;
      await server.stop();
      // Start only once the old postmaster is gone (else its data directory would be reused while it exits).
      await waitFor(async () => postmaster(dataDir) === null, 30_000, 'PostgreSQL stopped');
      server = await startEmbeddedPostgres({ dir: dataDir, port, extraFlags: ['-c', 'fsync=off'] });
      await waitFor(async () => p!.status.restarts > restartsBefore && p!.status.phase === 'streaming', 60_000, 'stream resumed');
    }
    await Bun.sleep(800);
    stopLoad.abort();
    await load.done;
    expect(load.stats().orders).toBeGreaterThan(200);
    const rows = await expectMirrorEqual(p.warehouse, sql, 'orders');
    if (process.env.IT_DEBUG) console.error(`restart test: ${rows} orders, ${failedTicks} load ticks failed while down`);
  } finally {
    await p?.stop();
    await sql?.end({ timeout: 2 });
    await server.stop();
  }
});

test('a slot invalidated while ducktail was away is reported with the recovery steps', async () => {
  const server = await startEmbeddedPostgres({
    dir: join(dir, 'pg-lost'),
    extraFlags: ['-c', 'fsync=off', '-c', 'max_slot_wal_keep_size=1MB', '-c', 'wal_keep_size=0', '-c', 'min_wal_size=32MB'],
  });
  const sql = connectSql(server.url, { max: 1 });
  let p: InlinePipeline | null = null;
  try {
    await sql`CREATE TABLE t (id int PRIMARY KEY)`;
    p = await start(server.url, 'wal_lost', 0);
    await waitFor(async () => p!.status.phase === 'streaming', 30_000, 'streaming');
    await p.stop();
    p = null;
    // Much more WAL than max_slot_wal_keep_size, then checkpoints: PostgreSQL invalidates the slot.
    for (let i = 0; i < 4; i++) {
      await sql`INSERT INTO t SELECT g FROM generate_series(${i * 20000 + 1}::int, ${(i + 1) * 20000}::int) g`;
      await sql`SELECT pg_switch_wal()`;
      await sql`CHECKPOINT`;
    }
    await waitFor(async () => (await readSlot(sql, 'wal_lost'))?.walStatus === 'lost', 20_000, 'slot invalidated');
    p = await start(server.url, 'wal_lost', 0);
    await waitFor(async () => p!.status.slot.invalidated !== null && (p!.status.error ?? '').includes('pg_drop_replication_slot'), 20_000, 'invalidation reported');
    expect(p.status.phase).toBe('retrying');
    expect(p.status.slot.walStatus).toBe('lost');
    expect(p.status.slot.invalidated!.recovery.join(' ')).toContain("SELECT pg_drop_replication_slot('wal_lost');");
    // Following the steps: drop the slot, and ducktail copies again on its next retry, without a restart.
    await sql`SELECT pg_drop_replication_slot('wal_lost')`;
    await waitFor(async () => p!.status.phase === 'streaming', 60_000, 'streaming again after the drop');
    const duck = await p.warehouse.connect();
    const n = Number((await duck.runAndReadAll('SELECT count(*) FROM public.t')).getRows()[0]![0]);
    duck.closeSync();
    expect(n).toBe(80_000);
  } finally {
    await p?.stop();
    await sql.end({ timeout: 2 });
    await server.stop();
  }
});
