import type { Sql } from 'postgres';
import schemaSql from '../../sql/demo/001_schema.sql' with { type: 'text' };

/** Creates the demo shop's tables and seed data in PostgreSQL (idempotent). */
export async function applyDemoSchema(sql: Sql): Promise<void> {
  await sql.unsafe(schemaSql);
}
