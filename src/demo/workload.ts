import type { Sql } from 'postgres';

/** Options of the synthetic order workload. */
export interface WorkloadOptions {
  /** Operations per second. */
  rate: number;
  signal: AbortSignal;
  /** Source of randomness (tests pass a seeded one). */
  random?: () => number;
  /** Called when a tick fails (the workload goes on, backing off up to 5 s while ticks fail). */
  onError?: (e: unknown) => void;
}

/** Counters of what the workload did. */
export interface WorkloadStats {
  orders: number;
  updates: number;
  cancels: number;
}

const TICK_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const NEXT_STATUS: Record<string, string> = { pending: 'paid', paid: 'shipped', shipped: 'delivered' };

/**
 * A shop's order traffic at `rate` operations per second, one transaction per 100 ms tick:
 * about 70% new orders, 25% status moves (pending -> paid -> shipped -> delivered), 5% cancellations.
 */
export function createWorkload(sql: Sql, opts: WorkloadOptions): { done: Promise<void>; stats(): WorkloadStats } {
  const random = opts.random ?? Math.random;
  const stats: WorkloadStats = { orders: 0, updates: 0, cancels: 0 };
  let carry = 0;

  async function tick(): Promise<void> {
    carry += (opts.rate * TICK_MS) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    if (n === 0) return;
    let inserts = 0;
    let moves = 0;
    let cancels = 0;
    for (let i = 0; i < n; i++) {
      const r = random();
      if (r < 0.7) inserts++;
      else if (r < 0.95) moves++;
      else cancels++;
    }
    await sql.begin(async (tx) => {
      if (inserts > 0) {
        const rows = Array.from({ length: inserts }, () => ({
          customer_id: 1 + Math.floor(random() * 200),
          product_id: 1 + Math.floor(random() * 50),
          quantity: 1 + Math.floor(random() * 4),
        }));
        await tx`
          INSERT INTO orders (customer_id, product_id, price, quantity)
          SELECT r.customer_id, r.product_id, p.price, r.quantity
            FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS r(customer_id bigint, product_id bigint, quantity int)
            JOIN products p USING (product_id)`;
        stats.orders += inserts;
      }
      if (moves > 0) {
        const moved = await tx`
          UPDATE orders o SET status = CASE o.status ${tx.unsafe(
            Object.entries(NEXT_STATUS).map(([a, b]) => `WHEN '${a}' THEN '${b}'`).join(' '),
          )} END
           WHERE o.order_id IN (SELECT order_id FROM orders WHERE status IN ('pending', 'paid', 'shipped')
                                 ORDER BY order_date DESC LIMIT ${moves * 4} )
             AND random() < 0.25`;
        stats.updates += moved.count;
      }
      if (cancels > 0) {
        const cancelled = await tx`
          UPDATE orders SET status = 'cancelled'
           WHERE order_id IN (SELECT order_id FROM orders WHERE status = 'pending' ORDER BY random() LIMIT ${cancels})`;
        stats.cancels += cancelled.count;
      }
    });
  }

  const done = (async () => {
    let failures = 0;
    while (!opts.signal.aborted) {
      const started = Date.now();
      try {
        await tick();
        failures = 0;
      } catch (e) {
        failures++;
        if (!opts.signal.aborted) opts.onError?.(e);
      }
      // While PostgreSQL is gone, back off (up to 5 s) instead of failing ten times a second.
      const pause = failures > 0 ? Math.min(TICK_MS * 2 ** failures, MAX_BACKOFF_MS) : TICK_MS - (Date.now() - started);
      await sleep(Math.max(0, pause), opts.signal);
    }
  })();
  return { done, stats: () => ({ ...stats }) };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
