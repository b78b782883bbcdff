/**
 * What the soak writes to PostgreSQL besides the demo workload, and how it records the truth:
 * an audit trigger logs every change of `orders` (transaction id, order, op, new status) in a table
 * that is not published, so the history the warehouse keeps can be checked change by change.
 * The old-orders writer inserts orders dated 8 to 400 days back (so every archive pass has rows
 * for the warm and cold tiers), moves and deletes old ones (late changes to archived rows).
 */
import type { Sql } from 'postgres';

/** Creates the audit table and trigger (after ducktail's initial copy: the copied rows have no audit). */
export async function installAudit(sql: Sql): Promise<void> {
  await sql.unsafe(`
    CREATE TABLE IF NOT EXISTS soak_audit (
      id       bigserial PRIMARY KEY,
      xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
      order_id bigint NOT NULL,
      op       char(1) NOT NULL,
      status   text
    );
    CREATE OR REPLACE FUNCTION soak_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        INSERT INTO soak_audit (order_id, op, status) VALUES (OLD.order_id, 'D', NULL);
        RETURN OLD;
      END IF;
      INSERT INTO soak_audit (order_id, op, status) VALUES (NEW.order_id, left(TG_OP, 1), NEW.status);
      RETURN NEW;
    END $$;
    CREATE OR REPLACE TRIGGER soak_audit AFTER INSERT OR UPDATE OR DELETE ON orders
      FOR EACH ROW EXECUTE FUNCTION soak_audit();
  `);
}

/** Orders dated `minDays`..`maxDays` back, inserted before ducktail's first start (they arrive by the initial copy). */
export async function seedOldOrders(sql: Sql, n: number, random: () => number): Promise<void> {
  const rows = Array.from({ length: n }, () => oldOrder(random));
  await insertOld(sql, rows);
}

interface OldOrder {
  customer_id: number;
  product_id: number;
  quantity: number;
  age_s: number;
}

function oldOrder(random: () => number): OldOrder {
  return {
    customer_id: 1 + Math.floor(random() * 200),
    product_id: 1 + Math.floor(random() * 50),
    quantity: 1 + Math.floor(random() * 4),
    age_s: Math.floor((8 + random() * 392) * 86_400),
  };
}

async function insertOld(sql: Sql, rows: OldOrder[]): Promise<void> {
  await sql`
    INSERT INTO orders (customer_id, product_id, price, quantity, order_date)
    SELECT r.customer_id, r.product_id, p.price, r.quantity, now() - make_interval(secs => r.age_s)
      FROM json_to_recordset(${JSON.stringify(rows)}::text::json) AS r(customer_id bigint, product_id bigint, quantity int, age_s int)
      JOIN products p USING (product_id)`;
}

/** Counts of what the old-orders writer committed (ticks whose commit failed are not counted). */
export interface OldOrderStats {
  inserts: number;
  updates: number;
  deletes: number;
  failedTicks: number;
}

/** Every `tickMs`: one transaction inserting 1-5 old orders, moving an old pending one to paid, sometimes deleting an old delivered or cancelled one. */
export function startOldOrders(sql: Sql, opts: { tickMs: number; random: () => number; signal: AbortSignal }) {
  const stats: OldOrderStats = { inserts: 0, updates: 0, deletes: 0, failedTicks: 0 };
  const done = (async () => {
    while (!opts.signal.aborted) {
      const rows = Array.from({ length: 1 + Math.floor(opts.random() * 5) }, () => oldOrder(opts.random));
      const purge = opts.random() < 0.3;
      try {
        const r = await sql.begin(async (tx) => {
          await insertOld(tx as unknown as Sql, rows);
          const moved = await tx`
            UPDATE orders SET status = 'paid' WHERE order_id = (
              SELECT order_id FROM orders WHERE status = 'pending' AND order_date < now() - interval '8 days'
               ORDER BY random() LIMIT 1)`;
          const deleted = purge
            ? await tx`
                DELETE FROM orders WHERE order_id = (
                  SELECT order_id FROM orders WHERE status IN ('delivered', 'cancelled', 'paid')
                     AND order_date < now() - interval '8 days' ORDER BY random() LIMIT 1)`
            : { count: 0 };
          return { moved: moved.count, deleted: deleted.count };
        });
        stats.inserts += rows.length;
        stats.updates += r.moved;
        stats.deletes += r.deleted;
      } catch {
        stats.failedTicks++;
      }
      await Bun.sleep(opts.tickMs);
    }
  })();
  return { done, stats: () => ({ ...stats }) };
}
