// readChunk takes COPY TO STDOUT's rows from postgres.js one socket read at a time (patches/postgres+3.4.9.patch,
// CopyDataRun) and counts them by PostgreSQL's CopyData messages: rows with line breaks, tabs and quotes, a value
// larger than a socket read, NULLs and empty strings come through whole, and the count is the rows, not the lines.
import { expect, test } from 'bun:test';
import type { TableSchema } from '../../src/change/index.ts';
import { connectSql } from '../../src/source/index.ts';
import { parseCopyCsv, readChunk } from '../../src/source/chunks.ts';
import { startPostgres } from '../support/postgres.ts';

test('a chunk read with COPY TO STDOUT holds every row exactly and counts rows, not lines', async () => {
  const pg = await startPostgres();
  const url = await pg.createDatabase(`it_copy_read_${process.pid}`);
  const sql = connectSql(url, { max: 1 });
  try {
    await sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await sql`INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 20000) g`;
    const odd: [number, string | null][] = [
      [30001, 'two\nlines'],
      [30002, 'tab\there "quoted" \r\n and more\n\n'],
      [30003, 'x'.repeat(300_000)],
      [30004, null],
      [30005, ''],
      [30006, '\\N'],
      [30007, 'é ünïcode ✓'],
    ];
    for (const [id, v] of odd) await sql`INSERT INTO t VALUES (${id}, ${v})`;
    const schema: TableSchema = {
      schema: 'public',
      table: 't',
      columns: [
        { name: 'id', typeOid: 23, typeMod: -1, key: true },
        { name: 'v', typeOid: 25, typeMod: -1, key: false },
      ],
    } as TableSchema;
    const reader = await sql.reserve();
    try {
      await reader.unsafe('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const { csv, rows } = await readChunk(reader, schema, '');
      expect(rows).toBe(20000 + odd.length);
      const parsed = parseCopyCsv(csv.toString('utf8'), 2);
      expect(parsed.length).toBe(rows);
      const byId = new Map(parsed.map((r) => [Number(r[0]), r[1]]));
      for (const [id, v] of odd) expect(byId.get(id)).toBe(v);
      expect(byId.get(12345)).toBe('row 12345');
      // The connection answers its next query (the socket is not left paused after the COPY).
      await reader.unsafe('ROLLBACK');
      const [{ n }] = (await reader.unsafe('SELECT count(*)::int AS n FROM t')) as unknown as [{ n: number }];
      expect(n).toBe(rows);
    } finally {
      reader.release();
    }
  } finally {
    await sql.end();
  }
}, 90_000);
