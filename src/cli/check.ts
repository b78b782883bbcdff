import type { Config } from '../config/index.ts';
import { errorMessage } from '../errors.ts';
import { checkPrerequisites, connectSql, type Problem, readSlot } from '../source/index.ts';
import { checkTiering } from '../tiering/index.ts';

/** Result of `ducktail check`: every problem found, each with its fix. */
export interface CheckReport {
  ok: string[];
  problems: Problem[];
}

/** Checks PostgreSQL's prerequisites, the slot's health and [tiering] (tables, folders, cold store) for a valid config. */
export async function runCheck(config: Config): Promise<CheckReport> {
  const ok: string[] = ['config is valid'];
  const problems: Problem[] = [];
  const sql = connectSql(config.source.url, { max: 1, connectTimeoutS: Math.min(config.source.connect_timeout_s, 10) });
  try {
    try {
      await sql`SELECT 1`;
      ok.push(`connected to ${redact(config.source.url)}`);
    } catch (e) {
      problems.push({
        check: 'connection',
        problem: `cannot connect to ${redact(config.source.url)}: ${errorMessage(e)}`,
        fix: 'check [source] url (or DUCKTAIL_SOURCE_URL), that PostgreSQL runs, and pg_hba.conf',
      });
      return { ok, problems };
    }
    const found = await checkPrerequisites(sql, { tables: config.source.tables, publication: config.source.publication });
    problems.push(...found);
    if (!found.some((p) => p.check === 'wal_level')) ok.push('wal_level = logical');
    if (!found.some((p) => p.check === 'replication privilege')) ok.push('role may replicate');
    if (!found.some((p) => p.check === 'primary key')) ok.push('every replicated table has a primary key or replica identity');
    const tiering = await checkTiering(config, sql);
    ok.push(...tiering.ok);
    problems.push(...tiering.problems);
    const [{ db }] = (await sql`SELECT current_database() AS db`) as unknown as [{ db: string }];
    const slot = await readSlot(sql, config.source.slot);
    if (!slot) {
      ok.push(`slot ${config.source.slot} does not exist yet: ducktail run creates it and copies every table`);
    } else if (slot.plugin !== 'pgoutput' || slot.database !== db || slot.walStatus === 'lost') {
      problems.push({
        check: 'slot',
        problem: `slot ${config.source.slot}: plugin ${slot.plugin}, database ${slot.database}, wal_status ${slot.walStatus}`,
        fix: `SELECT pg_drop_replication_slot('${config.source.slot}'); (ducktail then copies every table again)`,
      });
    } else {
      ok.push(`slot ${config.source.slot} is healthy (wal_status ${slot.walStatus}, ${slot.active ? 'in use' : 'idle'})`);
    }
  } finally {
    await sql.end({ timeout: 2 }).catch(() => {});
  }
  return { ok, problems };
}

/** Formats the report for a terminal. */
export function formatCheck(report: CheckReport): string {
  const lines = report.ok.map((l) => `ok    ${l}`);
  for (const p of report.problems) lines.push(`FAIL  ${p.check}: ${p.problem}\n      fix: ${p.fix}`);
  lines.push(report.problems.length === 0 ? 'ready' : `${report.problems.length} problem(s) to fix`);
  return lines.join('\n');
}

/** The URL without its password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
