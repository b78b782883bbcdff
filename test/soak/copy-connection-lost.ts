/**
 * `bun test/soak/copy-connection-lost.ts URL`: copies table `t` of URL with two workers and, as the copy
 * ends, terminates every other connection to the database; prints `outcome: ...` (how the copy settled,
 * or that it was still pending after 30 s) and the rows copied. A process of its own, because postgres.js
 * prints an uncaught TypeError for the terminated connections (pgjs-closed-socket.ts), which bun test
 * would count as a failure of whatever test is running.
 */
import postgres from 'postgres';
import { describeTable } from '../../src/source/catalog.ts';
import { connectSql } from '../../src/source/index.ts';
import { copySnapshot } from '../../src/source/snapshot.ts';

const url = process.argv[2]!;
const sql = connectSql(url, { max: 4 });
const admin = postgres(url, { max: 1, onnotice: () => {} });
const schema = await describeTable(sql, 'public', 't');
let rows = 0;
const copy = copySnapshot(sql, {
  slot: 'lost',
  snapshotName: null,
  consistentPoint: 0n,
  tables: [schema],
  batchRows: 1000,
  workers: 2,
  signal: new AbortController().signal,
  log: () => {},
  publish: async (batch) => {
    rows += batch.changes.filter((c) => c.op === 'R').length;
    if (batch.snapshot?.status === 'done') {
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()`;
      await Bun.sleep(200);
    }
  },
}).then(
  () => 'resolved',
  (e: { code?: string }) => `rejected ${e.code}`,
);
const outcome = await Promise.race([copy, Bun.sleep(30_000).then(() => 'still pending after 30 s')]);
console.log(`outcome: ${outcome}; rows: ${rows}`);
await admin.end({ timeout: 1 });
await sql.end({ timeout: 1 });
process.exit(0);
