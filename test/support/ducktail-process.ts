import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from 'postgres';

const ROOT = join(import.meta.dir, '../..');

/**
 * Runs `bun src/main.ts <args>` as a separate process, as a user would run ducktail. `detached`
 * gives it its own process group, as a shell does for a job: signal it with `signalGroup`.
 * `stderr: 'pipe'` keeps its stderr for the test to read.
 */
export function spawnDucktail(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; detached?: boolean; stderr?: 'inherit' | 'pipe' },
) {
  return Bun.spawn(['bun', join(ROOT, 'src/main.ts'), ...args], {
    cwd: opts.cwd,
    detached: opts.detached ?? false,
    stdout: 'inherit',
    stderr: opts.stderr ?? 'inherit',
    env: { ...process.env, ...opts.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
  });
}

/** Signals every process of the group led by `pid`, as a terminal's Ctrl-C (SIGINT) does; false if the group is empty. */
export function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the process exits; its exit code and the seconds it took from `since`. */
export async function exitWithin(proc: Bun.Subprocess, since: number, limitMs: number): Promise<{ code: number | null; seconds: number }> {
  const timeout = Bun.sleep(limitMs).then(() => 'timeout' as const);
  const r = await Promise.race([proc.exited, timeout]);
  if (r === 'timeout') return { code: null, seconds: (Date.now() - since) / 1000 };
  return { code: r, seconds: (Date.now() - since) / 1000 };
}

/** Waits until the API at `api` is ready; fails at once if the process exits first. */
export async function waitReady(proc: Bun.Subprocess, api: { ready(): Promise<boolean> }, timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await api.ready())) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`ducktail exited (${proc.exitCode ?? proc.signalCode}) before its API was ready`);
    }
    if (Date.now() > until) throw new Error(`ducktail's API not ready after ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}

/** The appliance's HTTP API at `base` (http://host:port). */
export function apiClient(base: string) {
  const query = async (sql: string): Promise<unknown[][]> => {
    const res = await fetch(`${base}/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql }),
    });
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
    return ((await res.json()) as { rows: unknown[][] }).rows;
  };
  return {
    query,
    async ready(): Promise<boolean> {
      try {
        return (await fetch(`${base}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    async count(table: string): Promise<number> {
      return Number((await query(`SELECT count(*) FROM ${table}`))[0]![0]);
    },
    /** The demo `orders` table as text, ordered by key. */
    async orders(): Promise<string[][]> {
      const rows = await query(`SELECT order_id, customer_id, product_id, CAST(price AS VARCHAR), quantity, status,
                                       CAST(order_date AS VARCHAR) FROM orders ORDER BY order_id`);
      return rows.map((r) => r.map(String));
    },
    /** Changes of `history.<table>` stored more than once (must be 0). */
    async duplicateChanges(table: string): Promise<number> {
      const rows = await query(
        `SELECT count(*) FROM (SELECT _lsn, _seq FROM history.${table} WHERE _op <> 'R' GROUP BY ALL HAVING count(*) > 1)`,
      );
      return Number(rows[0]![0]);
    },
  };
}

/** The demo `orders` table of the source as text, ordered by key (compare with `apiClient().orders()`). */
export async function sourceOrders(sql: Sql): Promise<string[][]> {
  const rows = await sql`SELECT order_id, customer_id, product_id, price::text, quantity, status, order_date::text
                          FROM orders ORDER BY order_id`.values();
  return rows.map((r) => r.map(String));
}

/**
 * Writes `<dir>/ducktail.toml` for an appliance on `url` with the inline bus, the API on `port` and small
 * batches; `source` adds [source] keys (TOML lines). Returns the file's path.
 */
export function writeApplianceConfig(dir: string, o: { url: string; slot: string; port: number; source?: string }): string {
  const path = join(dir, 'ducktail.toml');
  writeFileSync(
    path,
    `[source]\nurl = "${o.url}"\nslot = "${o.slot}"\npublication = "${o.slot}_pub"\nstatus_interval_ms = 500\n${o.source ?? ''}` +
      `[warehouse]\npath = "${join(dir, 'w.duckdb')}"\nbatch_rows = 500\nbatch_ms = 50\nmemory_limit = "512MB"\n` +
      `[tiering]\nwarm_dir = "${join(dir, 'warm')}"\n[api]\nlisten = "127.0.0.1:${o.port}"\n[log]\nlevel = "warn"\n`,
  );
  return path;
}
