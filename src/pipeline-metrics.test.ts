import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, ChangeBatch } from './change/index.ts';
import { createMetrics } from './metrics/index.ts';
import { instrumentSink, registerPipelineMetrics, registerTierMetrics, replicationLagSeconds } from './pipeline-metrics.ts';
import type { SourceStatus } from './source/index.ts';
import { createWarehouse, type Warehouse } from './warehouse/index.ts';

let dir: string;
let warehouse: Warehouse;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ducktail-pm-'));
  warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '256MB', threads: 1, stream: 'pm' });
});
afterAll(async () => {
  await warehouse?.close();
  rmSync(dir, { recursive: true, force: true });
});

const sample = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

test('tier families count live files, bytes and rows per tier from the tiering catalog', async () => {
  const m = createMetrics();
  registerTierMetrics(m, warehouse.instance);
  const empty = (await m.render()).text;
  expect(sample(empty, 'ducktail_tier_files{tier="warm"}')).toBe(0);
  const c = await warehouse.connect();
  await c.run(`INSERT INTO _ducktail.tier_files (id, table_name, kind, tier, location, month, row_count, byte_size, checksum, first_row_id, added_pass, retired_pass) VALUES
    (1, 'public.orders', 'current', 'warm', '/w/1.parquet', '2026-10', 100, 1000, 'x', 0, 1, NULL),
    (2, 'public.orders', 'history', 'warm', '/w/2.parquet', '2026-10', 50, 700, 'x', 100, 1, NULL),
    (3, 'public.orders', 'current', 'cold', 'file:///c/3.parquet', '2026-09', 10, 300, 'x', 150, 2, NULL),
    (4, 'public.orders', 'current', 'warm', '/w/4.parquet', '2026-09', 10, 300, 'x', 160, 1, 2)`);
  c.closeSync();
  await Bun.sleep(1100); // one catalog read serves a scrape for a second
  const text = (await m.render()).text;
  expect(sample(text, 'ducktail_tier_files{tier="warm"}')).toBe(2);
  expect(sample(text, 'ducktail_tier_bytes{tier="warm"}')).toBe(1700);
  expect(sample(text, 'ducktail_tier_rows{tier="warm"}')).toBe(150);
  expect(sample(text, 'ducktail_tier_files{tier="cold"}')).toBe(1);
  expect(sample(text, 'ducktail_tier_bytes{tier="cold"}')).toBe(300);
});

test('the instrumented sink counts batches, changes and snapshot rows and observes apply and commit-to-queryable time', async () => {
  const m = createMetrics();
  let applied = 0;
  const now = 1_800_000_000_000;
  const sink = instrumentSink(m, { apply: async () => void applied++ }, () => now);
  const change = (lsn: bigint, commitMs: number): Change => ({ op: 'I', table: 'public.t', row: [], lsn, seq: 0, commitTimeUs: BigInt(commitMs) * 1000n });
  const batch = (changes: Change[]): ChangeBatch => ({ tables: new Map(), changes });
  await sink.apply(batch([change(0n, 0), change(0n, 0)]));
  await sink.apply(batch([change(10n, now - 1500), change(11n, now - 200)]));
  // A raw chunk of the initial copy counts its rows as snapshot rows and changes.
  const csv = new TextEncoder().encode('1\ta\n2\tb\n3\tc\n');
  await sink.apply({ ...batch([]), copyChunk: { slot: 's', table: 'public.t', chunk: 0, csv, rows: 3, readAt: 0n, commitTimeUs: 0n } });
  const failing = instrumentSink(m, { apply: async () => Promise.reject(new Error('disk full')) });
  await expect(failing.apply(batch([change(12n, now)]))).rejects.toThrow('disk full');
  const text = (await m.render()).text;
  expect(applied).toBe(3);
  expect(sample(text, 'ducktail_batches_applied_total')).toBe(3);
  expect(sample(text, 'ducktail_changes_applied_total')).toBe(7);
  expect(sample(text, 'ducktail_snapshot_rows_applied_total')).toBe(5);
  expect(sample(text, 'ducktail_batch_apply_failures_total')).toBe(1);
  expect(sample(text, 'ducktail_batch_apply_duration_seconds_count')).toBe(3);
  // One observation per streamed batch, from its oldest commit: 1.5 s.
  expect(sample(text, 'ducktail_commit_to_queryable_seconds_count')).toBe(1);
  expect(sample(text, 'ducktail_commit_to_queryable_seconds_sum')).toBe(1.5);
  expect(sample(text, 'ducktail_commit_to_queryable_seconds_bucket{le="1"}')).toBe(0);
  expect(sample(text, 'ducktail_commit_to_queryable_seconds_bucket{le="2"}')).toBe(1);
});

test('replication lag: age of the oldest unconfirmed transaction; source families from its status', async () => {
  const status = { phase: 'streaming', unconfirmedSinceUs: 0n, receivedLsn: 0x1_0000_0010n, flushedLsn: 0x1_0000_0000n, slot: { lagBytes: 4096 } } as unknown as SourceStatus;
  expect(replicationLagSeconds(status, 5_000)).toBe(0);
  expect(replicationLagSeconds({ ...status, unconfirmedSinceUs: 2_000_000n }, 5_000)).toBe(3);
  expect(replicationLagSeconds(null, 5_000)).toBe(0);
  const m = createMetrics();
  registerPipelineMetrics(m, { source: () => ({ ...status, unconfirmedSinceUs: 1_000_000n }), dbPath: join(dir, 'w.duckdb'), now: () => 31_000 });
  const text = (await m.render()).text;
  expect(sample(text, 'ducktail_replication_lag_seconds')).toBe(30);
  expect(sample(text, 'ducktail_replication_lag_bytes')).toBe(4096);
  expect(sample(text, 'ducktail_received_lsn')).toBe(0x1_0000_0010);
  expect(sample(text, 'ducktail_confirmed_lsn')).toBe(0x1_0000_0000);
  expect(sample(text, 'ducktail_source_phase{phase="streaming"}')).toBe(1);
  expect(text).not.toContain('ducktail_snapshot_table_rows_copied{');
  const copying = createMetrics();
  const snapshot = { table: 'public.orders', rows: 2500, total: 10000, rowsPerSec: 500, etaS: 15 };
  registerPipelineMetrics(copying, { source: () => ({ ...status, phase: 'snapshot', snapshot }) as SourceStatus, dbPath: join(dir, 'w.duckdb') });
  const during = (await copying.render()).text;
  expect(sample(during, 'ducktail_snapshot_in_progress')).toBe(1);
  expect(sample(during, 'ducktail_snapshot_table_rows_copied{table="public.orders"}')).toBe(2500);
  expect(sample(during, 'ducktail_snapshot_table_rows_estimated{table="public.orders"}')).toBe(10000);
  expect(sample(during, 'ducktail_snapshot_table_eta_seconds{table="public.orders"}')).toBe(15);
  expect(sample(text, 'ducktail_duckdb_file_bytes')).toBeGreaterThan(0);
  expect(sample(text, 'ducktail_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
});
