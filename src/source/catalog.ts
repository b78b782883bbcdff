import type { Sql } from 'postgres';
import type { TableSchema } from '../change/index.ts';
import { PrerequisiteError } from '../errors.ts';

/** Quotes a PostgreSQL identifier. */
export function pgIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quoted "schema"."table" of a "schema.table" name. */
export function pgTable(name: string): string {
  const dot = name.indexOf('.');
  return `${pgIdent(name.slice(0, dot))}.${pgIdent(name.slice(dot + 1))}`;
}

/** Columns of a table as pgoutput would describe them: no dropped or generated columns; key = replica identity. */
export async function describeTable(sql: Sql, schema: string, table: string): Promise<TableSchema> {
  const rows = await sql<{ name: string; type_oid: number; type_mod: number; key: boolean; attnum: number; missing: string | null }[]>`
    SELECT a.attname AS name, a.atttypid::int AS type_oid, a.atttypmod AS type_mod, a.attnum::int AS attnum,
           CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END AS missing,
           (c.relreplident = 'f' OR coalesce(a.attnum = ANY(i.indkey), false)) AS key
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      LEFT JOIN pg_index i ON i.indrelid = c.oid
       AND ((c.relreplident = 'i' AND i.indisreplident) OR (c.relreplident = 'd' AND i.indisprimary))
     WHERE n.nspname = ${schema} AND c.relname = ${table}
     ORDER BY a.attnum`;
  if (rows.length === 0) {
    throw new PrerequisiteError('TABLE_NOT_FOUND', `table ${schema}.${table} does not exist in the source database`);
  }
  return {
    schema,
    table,
    columns: rows.map((r) => ({
      key: r.key, name: r.name, typeOid: r.type_oid, typeMod: r.type_mod, attnum: r.attnum,
      ...(r.missing === null ? {} : { missing: r.missing }),
    })),
  };
}

/** "schema.table" names in the publication, or null if the publication does not exist. */
export async function publicationTables(sql: Sql, publication: string): Promise<string[] | null> {
  const pub = await sql`SELECT 1 FROM pg_publication WHERE pubname = ${publication}`;
  if (pub.length === 0) return null;
  const rows = await sql<{ name: string }[]>`
    SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = ${publication} ORDER BY 1`;
  return rows.map((r) => r.name);
}

/** Creates the publication if missing (for the configured tables, or all tables); reuses it if present. */
export async function ensurePublication(sql: Sql, publication: string, tables: string[]): Promise<string[]> {
  let existing = await publicationTables(sql, publication);
  if (existing === null) {
    const target = tables.length > 0 ? `FOR TABLE ${tables.map(pgTable).join(', ')}` : 'FOR ALL TABLES';
    try {
      await sql.unsafe(`CREATE PUBLICATION ${pgIdent(publication)} ${target}`);
    } catch (e) {
      throw new PrerequisiteError(
        'PUBLICATION_CREATE_FAILED',
        `cannot create publication ${publication}: ${(e as Error).message}. Create it as a superuser or the ` +
          `tables' owner: CREATE PUBLICATION ${publication} ${target};`,
        { cause: e },
      );
    }
    existing = (await publicationTables(sql, publication)) ?? [];
  }
  const missing = tables.filter((t) => !existing.includes(t));
  if (missing.length > 0) {
    throw new PrerequisiteError(
      'PUBLICATION_MISSING_TABLES',
      `publication ${publication} does not include ${missing.join(', ')}: ` +
        `ALTER PUBLICATION ${publication} ADD TABLE ${missing.map(pgTable).join(', ')};`,
    );
  }
  return tables.length > 0 ? tables : existing;
}

/** One failed prerequisite and how to fix it. */
export interface Problem {
  check: string;
  problem: string;
  fix: string;
}

/** Server-side prerequisites of logical replication; returns every problem found (empty = ready). */
export async function checkPrerequisites(sql: Sql, opts: { tables: string[]; publication: string }): Promise<Problem[]> {
  const problems: Problem[] = [];
  const [settings] = await sql<{ wal_level: string; slots: string; senders: string }[]>`
    SELECT current_setting('wal_level') AS wal_level, current_setting('max_replication_slots') AS slots,
           current_setting('max_wal_senders') AS senders`;
  if (settings?.wal_level !== 'logical') {
    problems.push({
      check: 'wal_level',
      problem: `wal_level is ${settings?.wal_level}, logical replication needs logical`,
      fix: 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL',
    });
  }
  if (Number(settings?.slots) < 1 || Number(settings?.senders) < 1) {
    problems.push({
      check: 'replication slots',
      problem: `max_replication_slots=${settings?.slots}, max_wal_senders=${settings?.senders}`,
      fix: 'ALTER SYSTEM SET max_replication_slots = 10; ALTER SYSTEM SET max_wal_senders = 10; then restart',
    });
  }
  const [role] = await sql<{ name: string; ok: boolean }[]>`
    SELECT rolname AS name, (rolreplication OR rolsuper) AS ok FROM pg_roles WHERE rolname = current_user`;
  if (!role?.ok) {
    problems.push({
      check: 'replication privilege',
      problem: `role ${role?.name} may not start replication`,
      fix: `ALTER ROLE ${role?.name} WITH REPLICATION;`,
    });
  }
  // Without a publication yet, ducktail creates it FOR ALL TABLES: PostgreSQL would then refuse UPDATE
  // and DELETE on every keyless table of the database, so all of them must be checked before.
  const published = opts.tables.length > 0 ? opts.tables : await publicationTables(sql, opts.publication);
  const keyless = await sql<{ name: string }[]>`
    SELECT n.nspname || '.' || c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND c.relreplident <> 'f'
       AND ${published === null
         ? sql`c.relpersistence = 'p' AND n.nspname <> 'information_schema' AND left(n.nspname, 3) <> 'pg_'`
         : sql`n.nspname || '.' || c.relname = ANY(${published}::text[])`}
       AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                        AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident)))
     ORDER BY 1`;
  for (const t of keyless) {
    const why = published === null
      ? `the publication ${opts.publication} that ducktail creates FOR ALL TABLES would make PostgreSQL refuse UPDATE and DELETE on it`
      : 'its updates and deletes cannot be matched';
    problems.push({
      check: 'primary key',
      problem: `table ${t.name} has no primary key: ${why}`,
      fix:
        `ALTER TABLE ${t.name} ADD PRIMARY KEY (...); or ALTER TABLE ${t.name} REPLICA IDENTITY FULL;` +
        (published === null ? ' or list only the tables to replicate in [source] tables' : ''),
    });
  }
  return problems;
}

/** Throws one PrerequisiteError listing every problem. */
export function assertNoProblems(problems: Problem[]): void {
  if (problems.length === 0) return;
  const lines = problems.map((p) => `  - ${p.check}: ${p.problem}\n    fix: ${p.fix}`).join('\n');
  throw new PrerequisiteError('PREREQUISITES_MISSING', `PostgreSQL is not ready for ducktail:\n${lines}`);
}
