import { join } from 'node:path';
import type { Sql } from 'postgres';

const ROOT = join(import.meta.dir, '../..');

/** Runs `bun src/main.ts <args>` as a separate process, as a user would run ducktail. */
export function spawnDucktail(args: string[], opts: { cwd: string; env?: Record<string, string> }) {
  return Bun.spawn(['bun', join(ROOT, 'src/main.ts'), ...args], {
    cwd: opts.cwd,
    stdout: 'inherit',
    stderr: 'inherit',
    env: { ...process.env, ...opts.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
  });
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
