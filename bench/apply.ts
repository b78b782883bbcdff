// The warehouse's apply path alone (no PostgreSQL): N synthetic inserts of the bench's 7-column orders
// table in batches of B, as the source hands them over, through createWarehouse().apply; prints rows/s
// and the apply-stage timers. Isolates the warehouse from decoding when profiling.
// Usage: bun bench/apply.ts [rows=1000000] [batch=10000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, TableSchema } from '../src/change/index.ts';
import { createWarehouse } from '../src/warehouse/index.ts';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const BATCH = Number(process.argv[3] ?? 10_000);
const col = (name: string, typeOid: number, typeMod = -1, key = false) => ({ name, typeOid, typeMod, key });
const orders: TableSchema = {
  schema: 'public',
  table: 'orders',
  columns: [
    col('order_id', 20, -1, true), col('customer_id', 20), col('product_id', 20), col('price', 1700, (10 << 16 | 2) + 4),
    col('quantity', 23), col('status', 25), col('order_date', 1184),
  ],
};
const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'ducktail-apply-'));
const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: 'bench' });
if (process.env.BENCH_DUCK_SET) await warehouse.exclusive((c) => c.run(process.env.BENCH_DUCK_SET!));
const tables = new Map([['public.orders', orders]]);
const started = performance.now();
const cpu0 = process.cpuUsage();
for (let from = 1; from <= ROWS; from += BATCH) {
  const changes: Change[] = [];
  const lsn = BigInt(from) * 1000n;
  for (let g = from; g < from + BATCH && g <= ROWS; g++) {
    const ts = new Date(Date.UTC(2026, 10, 23) + g * 1000).toISOString().replace('T', ' ').replace('.000Z', '+00');
    const row = [String(g), String(g % 1000), String(g % 50), ((g % 10000) / 100).toFixed(2), String(1 + (g % 4)), 'pending', ts];
    changes.push({ op: 'I', table: 'public.orders', row, lsn, seq: g - from, commitTimeUs: 1_790_000_000_000_000n });
  }
  await warehouse.apply({ tables, changes, ackLsn: lsn + 10n });
}
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
const tc = performance.now();
await warehouse.exclusive((c) => c.run('CHECKPOINT'));
const checkpointMs = performance.now() - tc;
const st = warehouse.stats;
const parts = Object.entries(st.stageMs).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');
console.log(`${ROWS} rows in ${BATCH}-row batches: ${Math.round((ROWS / ms) * 1000)} rows/s; CPU ${Math.round(cpu.user / 1000)} ms user + ${Math.round(cpu.system / 1000)} ms sys (all threads, incl. building the rows); apply ${Math.round(st.totalApplyMs)} ms (${parts}); final CHECKPOINT ${Math.round(checkpointMs)} ms`);
await warehouse.close();
rmSync(dir, { recursive: true, force: true });
