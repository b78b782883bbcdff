// The network between ducktail and PostgreSQL cut mid-stream, both ways a network fails: reset
// (connections end, new ones refused) and blackhole (nothing moves, nothing ends: only the
// receive timeout can tell). ducktail reconnects by itself and the mirror equals the source.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { createWorkload } from '../../src/demo/workload.ts';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { expectMirrorEqual, waitFor } from './compare.ts';
import { startInlinePipeline } from './inline-pipeline.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-netcut-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

for (const kind of ['reset', 'blackhole'] as const) {
  test(`network ${kind} under load: ducktail reconnects by itself and the mirror equals the source row for row`, async () => {
    const pg = await startPostgres();
    const url = await pg.createDatabase(`it_netcut_${kind}_${process.pid}`);
    const sql = connectSql(url, { max: 2 });
    // The server drops the old walsender of a blackholed connection after this long (default 60 s):
    // until then the slot stays active for it and a new START_REPLICATION is refused and retried.
    await sql.unsafe(`ALTER DATABASE "it_netcut_${kind}_${process.pid}" SET wal_sender_timeout = '3s'`);
    await applyDemoSchema(sql);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: pg.port });
    const stopLoad = new AbortController();
    const load = createWorkload(sql, { rate: 300, signal: stopLoad.signal });
    const slot = `netcut_${kind}`;
    const p = await startInlinePipeline(dir, {
      url: proxy.url(url), slot, batchRows: 500, connectTimeoutS: 3, receiveTimeoutS: 3, heartbeatIntervalS: 1,
    });
    try {
      await waitFor(async () => p.status.phase === 'streaming', 30_000, 'streaming');
      await Bun.sleep(1000);
      const restartsBefore = p.status.restarts;
      const connectionsBefore = proxy.accepted;
      if (kind === 'reset') proxy.reset();
      else proxy.blackhole();
      // ducktail notices while the network is still cut (a blackholed stream only by the receive timeout).
      await waitFor(async () => p.status.restarts > restartsBefore, 15_000, 'the cut noticed');
      if (kind === 'blackhole') expect(String(p.status.error)).toMatch(/nothing received from PostgreSQL for \d+ s/);
      await Bun.sleep(2000); // reconnect attempts fail while the network is down
      proxy.heal();
      await waitFor(async () => p.status.phase === 'streaming', 60_000, 'stream resumed');
      expect(proxy.accepted).toBeGreaterThan(connectionsBefore);
      // The slot monitor came back too (its connection was cut as well).
      const cutAt = new Date().toISOString();
      await waitFor(async () => (p.status.slot.checkedAt ?? '') > cutAt && p.status.slot.error === null, 30_000, 'slot monitor answers again');
      await Bun.sleep(1000);
      stopLoad.abort();
      await load.done;
      expect(load.stats().orders).toBeGreaterThan(300);
      await expectMirrorEqual(p.warehouse, sql, 'orders');
    } finally {
      stopLoad.abort();
      await load.done.catch(() => {});
      await p.stop();
      await proxy.close();
      await sql.end({ timeout: 2 });
    }
  }, 120_000);
}
