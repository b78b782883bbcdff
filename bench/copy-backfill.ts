// The stream's cost of the copy's lazy `R` rows before and after their backfill (lazy-copy.ts), DuckDB only:
// a 1M-row 7-column orders table loaded as raw copied chunks, then BATCHES batches of 10k updates of random
// keys while every copied row still has its position (each batch joins its keys with the current table), then
// the copy's end marker, the backfill timed, and the same number of batches again (no join left).
// Usage: bun bench/copy-backfill.ts [rows=1000000] [batches=30]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, ChangeBatch, TableSchema } from '../src/change/index.ts';
import { createWarehouse } from '../src/warehouse/index.ts';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const BATCHES = Number(process.argv[3] ?? 30);
const ORDERS: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    { key: true, name: 'order_id', typeOid: 20, typeMod: -1, attnum: 1 },
    { key: false, name: 'customer_id', typeOid: 20, typeMod: -1, attnum: 2 },
    { key: false, name: 'product_id', typeOid: 20, typeMod: -1, attnum: 3 },
    { key: false, name: 'price', typeOid: 1700, typeMod: (10 << 16) + 2 + 4, attnum: 4 },
    { key: false, name: 'quantity', typeOid: 23, typeMod: -1, attnum: 5 },
    { key: false, name: 'status', typeOid: 25, typeMod: -1, attnum: 6 },
    { key: false, name: 'order_date', typeOid: 1184, typeMod: -1, attnum: 7 },
  ],
};
const tables = new Map([['public.orders', ORDERS]]);
const row = (id: number, v: number) => [String(id), String(id % 1000), String(id % 97), `${v % 1000}.25`, String(v % 10), 'shipped', '2026-12-07 06:00:00+00'];
const now = BigInt(Date.now()) * 1000n;

const dir = mkdtempSync(join(tmpdir(), 'ducktail-bench-backfill-'));
const w = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: 's' });
const marker = (status: 'copying' | 'done'): ChangeBatch => ({ tables: new Map(), changes: [], snapshot: { slot: 's', status, consistentPoint: 1n, rows: ROWS } });
await w.apply({ tables, changes: [{ op: 'T', table: 'public.orders', row: [], lsn: 0n, seq: 0, commitTimeUs: now }], snapshot: marker('copying').snapshot });
const CHUNK = 100_000;
for (let from = 1, n = 0; from <= ROWS; from += CHUNK, n++) {
  const count = Math.min(CHUNK, ROWS - from + 1);
  const lines = Array.from({ length: count }, (_, i) => `${row(from + i, from + i).join('\t')}\n`).join('');
  await w.apply({ tables, changes: [], copyChunk: { slot: 's', table: 'public.orders', chunk: n, csv: new TextEncoder().encode(lines), rows: count, readAt: 0n, commitTimeUs: now } });
}
let lsn = 1000n;
const updates = async (label: string) => {
  const times: number[] = [];
  const joins = w.stats.stageMs.copyJoins;
  for (let b = 0; b < BATCHES; b++) {
    const changes: Change[] = Array.from({ length: 10_000 }, (_, i) => {
      const id = 1 + Math.floor(Math.random() * ROWS);
      return { op: 'U', table: 'public.orders', row: row(id, b * 10_000 + i), lsn, seq: i, commitTimeUs: now };
    });
    lsn += 100n;
    const t0 = performance.now();
    await w.apply({ tables, changes });
    times.push(performance.now() - t0);
  }
  const s = [...times].sort((a, b) => a - b);
  console.log(`${label}: ${BATCHES} batches of 10k updates, per batch median ${s[s.length >> 1]!.toFixed(1)} ms (p10 ${s[Math.floor(s.length * 0.1)]!.toFixed(1)}, p90 ${s[Math.floor(s.length * 0.9)]!.toFixed(1)}), copied-row joins ${w.stats.stageMs.copyJoins - joins}`);
};
await updates('before the backfill (copied rows keep positions)');
const t0 = performance.now();
await w.apply(marker('done'));
await w.backfilled();
const b = w.stats.backfill;
console.log(`backfill: ${(performance.now() - t0).toFixed(0)} ms for ${b.rows} rows in ${b.slices} slices (${b.sliceMs.toFixed(0)} ms inside them, ${(b.sliceMs / Math.max(1, b.slices)).toFixed(1)} ms a slice)`);
await updates('after the backfill');
await w.close();
rmSync(dir, { recursive: true, force: true });
