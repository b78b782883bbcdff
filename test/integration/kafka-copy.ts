/** Shared by the Kafka copy-kill tests: the seeded `items` table, its topics, and the history's copy checks. */
import type { Sql } from 'postgres';
import { connectSql } from '../../src/source/index.ts';
import { createWarehouse } from '../../src/warehouse/index.ts';
import { startKafkaMock, type KafkaMock } from '../support/kafka.ts';
import { startPostgres } from '../support/postgres.ts';

/** A database holding `items(id, qty, note)` with `rows` rows, and a 3-broker mock with its topic and dead-letter topic. */
export async function itemsOnKafka(db: string, rows: number, prefix: string, partitions: number): Promise<{ url: string; sql: Sql; kafka: KafkaMock }> {
  const pg = await startPostgres();
  const url = await pg.createDatabase(db);
  const sql = connectSql(url, { max: 2 });
  await sql.unsafe(`
    CREATE TABLE items (id bigint PRIMARY KEY, qty int, note text);
    INSERT INTO items SELECT g, g % 7, 'item ' || g FROM generate_series(1, ${rows}) g;
    ANALYZE items;`);
  const kafka = await startKafkaMock({ brokers: 3 });
  await kafka.createTopic(`${prefix}.public.items`, partitions, 3);
  await kafka.createTopic(`${prefix}-dead-letter`, 1, 3);
  return { url, sql, kafka };
}

export interface CopyHistory {
  /** The mirror: count(*), sum(qty), sum(id), count(DISTINCT id). */
  mirror: number[];
  /** `R` rows in the history, and their distinct keys. */
  rows: number;
  keys: number;
  /** `T` rows in the history. */
  resets: number;
  /** (_lsn, _seq) pairs held more than once. */
  twice: number;
  /** Positions missing: per `_lsn`, the `_seq` not in 0..max. */
  missing: number;
  /** The last copy (the `R` rows of the latest copy time): rows, keys, sum(qty), 1 when all its `_seq` lie above the earlier copies'. */
  last: [number, number, number, number];
}

/** Reads the copy checks of `history.items` in the warehouse file at `path` (ducktail stopped). */
export async function copyHistory(path: string, slot: string): Promise<CopyHistory> {
  const w = await createWarehouse({ path, memoryLimit: '256MB', threads: 1, stream: slot });
  const duck = await w.connect();
  const read = async (q: string) => (await duck.runAndReadAll(q)).getRows()[0]!.map(Number);
  try {
    const mirror = await read('SELECT count(*), coalesce(sum(qty), 0), coalesce(sum(id), 0), count(DISTINCT id) FROM items');
    const [rows, keys] = await read("SELECT count(*), count(DISTINCT id) FROM history.items WHERE _op = 'R'");
    const [resets] = await read("SELECT count(*) FROM history.items WHERE _op = 'T'");
    const [twice] = await read('SELECT count(*) FROM (SELECT _lsn, _seq FROM history.items GROUP BY ALL HAVING count(*) > 1)');
    const [missing] = await read(
      'SELECT coalesce(sum(max_seq + 1 - seqs), 0) FROM (SELECT _lsn, max(_seq) AS max_seq, count(DISTINCT _seq) AS seqs FROM history.items GROUP BY _lsn)',
    );
    const last = await read(
      `WITH r AS (SELECT * FROM history.items WHERE _op = 'R'), l AS (SELECT * FROM r WHERE _commit_ts = (SELECT max(_commit_ts) FROM r))
       SELECT count(*), count(DISTINCT id), coalesce(sum(qty), 0),
              min(_seq) > (SELECT coalesce(max(_seq), -1) FROM r WHERE _commit_ts < (SELECT max(_commit_ts) FROM r)) FROM l`,
    );
    return { mirror, rows: rows!, keys: keys!, resets: resets!, twice: twice!, missing: missing!, last: last as CopyHistory['last'] };
  } finally {
    duck.closeSync();
    await w.close();
  }
}
