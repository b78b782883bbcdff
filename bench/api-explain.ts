// Where an analytics query's time goes: each endpoint's SQL run alone (no ingest, 1 client) on a generated
// ROWS-row orders table, then the same query by CONC concurrent connections, and EXPLAIN ANALYZE of one.
// Usage: bun bench/api-explain.ts [rows=10000000] [conc=4] [endpoint-to-explain=customer-activity] [only]
// only: time just the explained endpoint.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_ANALYTICS } from '../src/api/analytics/index.ts';
import { render, resolveColumns, TEMPLATES } from '../src/api/analytics/sql.ts';
import { createWarehouse } from '../src/warehouse/index.ts';
import { createQueryEngine } from '../src/warehouse/query.ts';
import { benchOrdersSql } from './api-orders.ts';

const ROWS = Number(process.argv[2] ?? 10_000_000);
const CONC = Number(process.argv[3] ?? 4);
const EXPLAIN = process.argv[4] ?? 'customer-activity';
const dir = mkdtempSync(join(tmpdir(), 'ducktail-api-explain-'));
const warehouse = await createWarehouse({ path: join(dir, 'w.duckdb'), memoryLimit: '2GB', threads: 2, stream: 'x' });
const gen = await warehouse.connect();
await gen.run(`CREATE SCHEMA bench; ${benchOrdersSql('bench.orders', ROWS)}`);
gen.closeSync();
const engine = createQueryEngine({ instance: warehouse.instance });
const cols = await resolveColumns(engine, { ...DEMO_ANALYTICS, table: 'bench.orders' });
const CASES: Record<string, [string, unknown[], string]> = {
  'daily-orders': ['2026-10-26T00:00:00Z', '2026-11-25T00:00:00Z', 'day'],
  'revenue 1d': ['2026-08-27T00:00:00Z', '2026-11-25T00:00:00Z', 'day'],
  'top-customers': ['2026-10-26T00:00:00Z', '2026-11-25T00:00:00Z', 'day'],
  'customer-activity': ['2026-10-26T00:00:00Z', '2026-11-25T00:00:00Z', 'day'],
  'anomalies 1m': ['2026-11-24T17:30:00Z', '2026-11-25T00:00:00Z', 'minute'],
} as never;
const sqlOf = (name: string) => {
  const [from, to, unit] = CASES[name]! as unknown as [string, string, string];
  const tpl = TEMPLATES[name.split(' ')[0] as keyof typeof TEMPLATES];
  const sql = render(tpl, { ...cols, unit, window: 30 });
  const params: unknown[] = [from, to, 'cancelled', ...(name === 'top-customers' ? [10] : name.startsWith('anomalies') ? ['2026-11-24T18:00:00Z', 3] : [])];
  const used = Math.max(0, ...[...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  return { sql, params: params.slice(0, used) };
};
console.log(`${ROWS} rows; alone = 1 query, median of 3; together = ${CONC} at once, wall time`);
for (const name of process.argv[5] === 'only' ? [EXPLAIN] : Object.keys(CASES)) {
  const { sql, params } = sqlOf(name);
  const alone: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await engine.query(sql, params);
    alone.push(performance.now() - t);
  }
  const t = performance.now();
  await Promise.all(Array.from({ length: CONC }, () => engine.query(sql, params)));
  const together = performance.now() - t;
  console.log(`${name.padEnd(20)} alone ${alone.sort((a, b) => a - b)[1]!.toFixed(0).padStart(6)} ms   ${CONC} together ${together.toFixed(0).padStart(6)} ms`);
}
const { sql, params } = sqlOf(EXPLAIN);
const conn = await warehouse.connect();
const p = await conn.prepare(`EXPLAIN ANALYZE ${sql.replace(/^--.*$/gm, '')}`);
params.forEach((v, i) => (typeof v === 'number' ? p.bindBigInt(i + 1, BigInt(v)) : p.bindVarchar(i + 1, String(v))));
const r = await p.runAndReadAll();
console.log(String(r.getRows()[0]?.[1]));
conn.closeSync();
await warehouse.close();
rmSync(dir, { recursive: true, force: true });
