// The soak's end check must catch what it claims to: a faithful copy passes, and a lost change, a
// change stored twice, a seq gap and a stale mirror row are each counted. Source: the real test
// PostgreSQL with the audit trigger; warehouse side: a real DuckDB holding `orders` and
// `history.orders` built from the source, then damaged on purpose.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Sql } from 'postgres';
import { applyDemoSchema } from '../../src/demo/schema.ts';
import { connectSql } from '../../src/source/index.ts';
import { startPostgres } from '../support/postgres.ts';
import { installAudit } from './load.ts';
import { verify } from './verify.ts';

let sql: Sql;
let duck: DuckDBConnection;
const query = async (q: string) => (await duck.runAndReadAll(q)).getRows() as unknown[][];

beforeAll(async () => {
  const pg = await startPostgres();
  sql = connectSql(await pg.createDatabase(`it_soak_verify_${process.pid}`), { max: 2 });
  await applyDemoSchema(sql);
  await installAudit(sql);
  await sql`INSERT INTO orders (customer_id, product_id, price, quantity) SELECT g, g, 10.5, 1 FROM generate_series(1, 6) g`;
  await sql`UPDATE orders SET status = 'paid' WHERE order_id IN (1, 2, 3)`;
  await sql.begin(async (tx) => {
    await tx`UPDATE orders SET status = 'shipped' WHERE order_id = 1`;
    await tx`DELETE FROM orders WHERE order_id = 6`;
  });
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run(`SET TimeZone = 'UTC'`);
}, 60_000);
afterAll(async () => {
  duck?.closeSync();
  await sql?.end();
});

/** A faithful warehouse: the source's rows, and history = the audit, one lsn per transaction. */
async function faithful(): Promise<void> {
  await duck.run(`DROP TABLE IF EXISTS orders; DROP SCHEMA IF EXISTS history CASCADE; CREATE SCHEMA history`);
  await duck.run(`CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, product_id BIGINT, price DECIMAL(10,2),
                    quantity INTEGER, status VARCHAR, order_date TIMESTAMPTZ)`);
  await duck.run(`CREATE TABLE history.orders (order_id BIGINT, status VARCHAR, _op VARCHAR, _lsn UBIGINT, _seq INTEGER, _commit_ts TIMESTAMPTZ DEFAULT now())`);
  for (const r of await sql`SELECT order_id, customer_id, product_id, price::text, quantity, status, order_date::text FROM orders`.values()) {
    await duck.run(`INSERT INTO orders VALUES (${r[0]}, ${r[1]}, ${r[2]}, ${r[3]}, ${r[4]}, '${r[5]}', '${r[6]}')`);
  }
  const audit = await sql`SELECT order_id, op, status, dense_rank() OVER (ORDER BY xid::text::bigint) AS tx,
                                 row_number() OVER (PARTITION BY xid ORDER BY id) - 1 AS seq FROM soak_audit ORDER BY id`.values();
  for (const [id, op, status, tx, seq] of audit) {
    await duck.run(`INSERT INTO history.orders (order_id, status, _op, _lsn, _seq) VALUES (${id}, ${status === null ? 'NULL' : `'${status}'`}, '${op}', ${1000 * Number(tx)}, ${seq})`);
  }
}

test('a faithful warehouse passes', async () => {
  await faithful();
  const v = await verify(sql, query);
  expect(v.sourceMd5).toBe(v.mirrorMd5);
  expect(v.rowsCompared).toBe(5);
  expect(v.changesExpected).toBe(11);
  expect(v.changesInHistory).toBe(11);
  expect([v.rowsLost, v.rowsDiffering, v.rowsExtra, v.changesLost, v.changesDuplicated, v.duplicatePositions, v.seqGaps, v.misordered]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  expect(v.transactionsHistory).toBe(v.transactionsSource);
});

test('a lost change, a change stored twice, a stale row and a missing row are each counted', async () => {
  await faithful();
  await duck.run(`DELETE FROM history.orders WHERE order_id = 1 AND status = 'shipped'`); // seq 0 of its lsn never reached history
  await duck.run(`INSERT INTO history.orders SELECT * FROM history.orders WHERE order_id = 2 AND _op = 'U'`); // replayed twice
  await duck.run(`UPDATE orders SET status = 'paid' WHERE order_id = 1`); // the last update lost in the mirror
  await duck.run(`DELETE FROM orders WHERE order_id = 5`);
  const v = await verify(sql, query);
  expect(v.sourceMd5).not.toBe(v.mirrorMd5);
  expect(v.rowsLost).toBe(1);
  expect(v.rowsDiffering).toBe(1);
  expect(v.changesLost).toBe(1);
  expect(v.changesDuplicated).toBe(1);
  expect(v.duplicatePositions).toBe(1);
  expect(v.seqGaps).toBe(1); // the lsn whose first change is gone (a change lost at the end of an lsn shows only order by order)
  expect(v.examples.length).toBeGreaterThan(0);
});

test('changes in another order than the source made them are reported as misordered', async () => {
  await faithful();
  await duck.run(`UPDATE history.orders SET _lsn = 1 WHERE order_id = 1 AND status = 'shipped'`);
  const v = await verify(sql, query);
  expect(v.misordered).toBe(1);
  expect(v.changesLost + v.changesDuplicated).toBe(0);
});

test('a copy applied twice (its (lsn, seq) positions stored twice) and a position missing from the last copy are counted', async () => {
  await faithful();
  // The initial copy's rows: op 'R', lsn 0, seq 0..n-1, the copy's start time (src/warehouse/copy.ts).
  const copy = (base: number, at: string) =>
    duck.run(`INSERT INTO history.orders SELECT order_id, status, 'R', 0, ${base} + order_id - 1, TIMESTAMPTZ '${at}' FROM orders`);
  await copy(0, '2026-12-07 00:00:00+00');
  let v = await verify(sql, query);
  expect([v.copiedOrders, v.copiedTwice, v.copyPositionsTwice, v.lastCopyRows, v.lastCopyOrders, v.copyPositionsMissing]).toEqual([5, 0, 0, 5, 5, 0]);
  // A copy that started over numbered from 0 again: every position twice (the defect the soak's copy kill found).
  await copy(0, '2026-12-07 00:01:00+00');
  v = await verify(sql, query);
  expect([v.copiedTwice, v.copyPositionsTwice, v.lastCopyRows, v.lastCopyOrders]).toEqual([5, 5, 5, 5]);
  expect(v.duplicatePositions).toBe(0); // the (lsn, seq) check of streamed changes is separate
  // Numbered past the first copy instead: nothing twice; the last copy is whole unless a row of it is gone.
  await duck.run(`DELETE FROM history.orders WHERE _commit_ts = TIMESTAMPTZ '2026-12-07 00:01:00+00'`);
  await copy(5, '2026-12-07 00:01:00+00');
  v = await verify(sql, query);
  expect([v.copiedTwice, v.copyPositionsTwice, v.lastCopyRows, v.copyPositionsMissing]).toEqual([5, 0, 5, 0]);
  await duck.run(`DELETE FROM history.orders WHERE _op = 'R' AND _seq = 7`);
  v = await verify(sql, query);
  expect([v.lastCopyRows, v.lastCopyOrders, v.copyPositionsMissing]).toEqual([4, 4, 1]);
});
