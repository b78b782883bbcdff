// Records raw pgoutput CopyData payloads from a real PostgreSQL into test/fixtures/pgoutput/*.json,
// the byte fixtures of src/source/pgoutput.test.ts. Run: bun scripts/record-pgoutput-fixtures.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectReplication, connectSql } from '../src/source/slot.ts';
import { startPostgres, stopPostgres } from '../test/support/postgres.ts';

const out = join(import.meta.dir, '../test/fixtures/pgoutput');
const pg = await startPostgres();
const url = await pg.createDatabase('fixtures');
const sql = connectSql(url, { max: 1 });
const [{ server_version: version }] = (await sql`SHOW server_version`) as unknown as [{ server_version: string }];

await sql.unsafe(`
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE items (id bigint PRIMARY KEY, price numeric(10,2), note text, at timestamptz, raw bytea, m mood);
  CREATE TABLE full_rows (a int, b text);
  ALTER TABLE full_rows REPLICA IDENTITY FULL;
  CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
  ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
  CREATE TABLE big (id int PRIMARY KEY, pad text);
  CREATE PUBLICATION fx FOR ALL TABLES;
`);
await sql`SELECT pg_create_logical_replication_slot('fx_v1', 'pgoutput')`;

await sql.unsafe(`
  INSERT INTO items VALUES (1, 10.50, 'first', '2026-11-23 23:03:16.123456+00', '\\x01ff', 'happy'), (2, NULL, NULL, NULL, NULL, NULL);
  UPDATE items SET price = 11.25 WHERE id = 1;
  UPDATE items SET id = 3 WHERE id = 2;
  DELETE FROM items WHERE id = 3;
  INSERT INTO full_rows VALUES (1, 'x');
  UPDATE full_rows SET b = 'y';
  DELETE FROM full_rows;
  INSERT INTO docs VALUES (1, 'big', repeat('abcdefghij', 5000));
  UPDATE docs SET title = 'big v2' WHERE id = 1;
  TRUNCATE full_rows;
  SELECT pg_logical_emit_message(true, 'ducktail', 'hello');
`);
await sql`SELECT pg_logical_emit_message(false, 'fixture-end', 'end')`;
// The v2 slot sees only one transaction, large enough to be streamed with a 64kB logical_decoding_work_mem.
await sql`SELECT pg_create_logical_replication_slot('fx_v2', 'pgoutput')`;
await sql.unsafe(`INSERT INTO big SELECT g, repeat('p', 100) FROM generate_series(1, 600) g`);
await sql`SELECT pg_logical_emit_message(false, 'fixture-end', 'end')`;

async function record(slot: string, options: string, settings: Record<string, string>): Promise<string[]> {
  const repl = connectReplication(url);
  for (const [k, v] of Object.entries(settings)) await repl.unsafe(`SET ${k} = '${v}'`).catch(() => {});
  const stream = await repl.unsafe(`START_REPLICATION SLOT ${slot} LOGICAL 0/0 (${options})`).writable();
  const chunks: string[] = [];
  const endMarker = Buffer.from('fixture-end');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 15_000);
    stream.on('data', (chunk: Buffer) => {
      if (chunk[0] !== 0x77) return; // keep 'w' XLogData only; keepalives carry no fixture value
      chunks.push(chunk.toString('hex'));
      if (chunk.includes(endMarker)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  stream.end();
  await repl.end({ timeout: 1 });
  return chunks;
}

const v1 = await record('fx_v1', "proto_version '1', publication_names 'fx', messages 'true'", {});
const v2 = await record('fx_v2', "proto_version '2', publication_names 'fx', messages 'true', streaming 'on'", {
  logical_decoding_work_mem: '64kB',
});
const note = `recorded from PostgreSQL ${version} by scripts/record-pgoutput-fixtures.ts`;
writeFileSync(join(out, 'v1.json'), `${JSON.stringify({ note, messages: v1 }, null, 1)}\n`);
writeFileSync(join(out, 'v2-streaming.json'), `${JSON.stringify({ note, messages: v2 }, null, 1)}\n`);
console.log(`v1: ${v1.length} messages, v2: ${v2.length} messages (${note})`);
await sql.end();
await stopPostgres();
