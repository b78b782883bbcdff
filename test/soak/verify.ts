/**
 * The soak's end check, once the workload has stopped and ducktail has caught up:
 * 1. mirror: `orders` in the warehouse equals the source row for row (md5 over the ordered rows,
 *    computed in each database; on a difference, the rows are compared one by one to count them);
 * 2. history: no (lsn, seq) twice, the initial copy's rows (op 'R') included; within each lsn the seqs are
 *    0..n-1 (no gap), and the last copy's seqs follow one another; one lsn per source transaction that changed orders; and, order by order, the ops and statuses of `history.orders`
 *    (ordered by lsn, seq) equal what the source's audit trigger logged (ordered by audit id).
 */
import type { Sql } from 'postgres';

type Query = (sql: string) => Promise<unknown[][]>;

/** What the end check found. `lost` and `duplicated` must be 0. */
export interface SoakVerdict {
  rowsCompared: number;
  sourceMd5: string;
  mirrorMd5: string;
  /** Source rows missing from the mirror, or there with other values. */
  rowsLost: number;
  rowsDiffering: number;
  /** Mirror rows not in the source, or a key more than once. */
  rowsExtra: number;
  changesExpected: number;
  changesInHistory: number;
  /** Audited changes absent from history. */
  changesLost: number;
  /** History changes beyond the audited ones, plus (lsn, seq) pairs stored more than once. */
  changesDuplicated: number;
  duplicatePositions: number;
  /** lsns whose seqs are not exactly 0..n-1. */
  seqGaps: number;
  /** Orders whose changes are all there but in another order. */
  misordered: number;
  transactionsSource: number;
  transactionsHistory: number;
  /** Orders with a copy row ('R') in history, and those with more than one (a copy written twice). */
  copiedOrders: number;
  copiedTwice: number;
  /** Copy rows ('R') whose (lsn, seq) another copy row also has (a copy applied twice, e.g. after a kill -9 during it). */
  copyPositionsTwice: number;
  /**
   * The last copy (the 'R' rows of the latest `_commit_ts` among them: each copy carries its start time; an
   * interrupted copy's rows may stay before it): its rows, the orders they hold, and the seqs missing
   * between its lowest and highest (a copy's rows are numbered one after another).
   */
  lastCopyRows: number;
  lastCopyOrders: number;
  copyPositionsMissing: number;
  /** Up to 10 examples of what differed. */
  examples: string[];
}

const ROW_PG = `concat_ws('|', order_id, customer_id, product_id, price::text, quantity, status, order_date::text)`;
const ROW_DUCK = `concat_ws('|', order_id, customer_id, product_id, CAST(price AS VARCHAR), quantity, status, CAST(order_date AS VARCHAR))`;

/** md5 of the ordered rows in PostgreSQL and in the warehouse. */
export async function checksums(sql: Sql, query: Query): Promise<{ source: string; mirror: string; sourceRows: number }> {
  const [pg] = await sql.unsafe(`SELECT coalesce(md5(string_agg(${ROW_PG}, E'\\n' ORDER BY order_id)), '') AS h, count(*)::int AS n FROM orders`);
  const duck = await query(`SELECT coalesce(md5(string_agg(${ROW_DUCK}, chr(10) ORDER BY order_id)), '') FROM orders`);
  return { source: String(pg!.h), mirror: String(duck[0]![0]), sourceRows: Number(pg!.n) };
}

export async function verify(sql: Sql, query: Query): Promise<SoakVerdict> {
  const examples: string[] = [];
  const note = (s: string) => void (examples.length < 10 && examples.push(s));

  const sums = await checksums(sql, query);
  const src = new Map<string, string>();
  for (const [id, row] of await sql.unsafe(`SELECT order_id::text, ${ROW_PG} FROM orders`).values()) src.set(String(id), String(row));
  const mirror = new Map<string, string>();
  let rowsExtra = 0;
  for (const [id, row] of await query(`SELECT CAST(order_id AS VARCHAR), ${ROW_DUCK} FROM orders`)) {
    if (mirror.has(String(id))) {
      rowsExtra++;
      note(`order ${id} twice in the mirror`);
    }
    mirror.set(String(id), String(row));
  }
  let rowsLost = 0;
  let rowsDiffering = 0;
  for (const [id, row] of src) {
    const m = mirror.get(id);
    if (m === undefined) {
      rowsLost++;
      note(`order ${id} missing from the mirror`);
    } else if (m !== row) {
      rowsDiffering++;
      note(`order ${id}: source ${row} / mirror ${m}`);
    }
  }
  for (const id of mirror.keys()) {
    if (!src.has(id)) {
      rowsExtra++;
      note(`order ${id} in the mirror, not in the source`);
    }
  }

  const dupRows = await query(
    `SELECT count(*), coalesce(sum(c - 1), 0) FROM (SELECT _lsn, _seq, count(*) AS c FROM history.orders WHERE _op <> 'R' GROUP BY ALL HAVING count(*) > 1)`,
  );
  const duplicatePositions = Number(dupRows[0]![0]);
  const gaps = await query(
    `SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM (SELECT _lsn, min(_seq) = 0 AND max(_seq) = count(DISTINCT _seq) - 1 AS ok FROM history.orders WHERE _op <> 'R' GROUP BY _lsn)`,
  );
  const copies = await query(
    `SELECT count(*), count(*) FILTER (WHERE c > 1) FROM (SELECT order_id, count(*) AS c FROM history.orders WHERE _op = 'R' GROUP BY order_id)`,
  );
  const copyDups = await query(
    `SELECT coalesce(sum(c - 1), 0) FROM (SELECT _lsn, _seq, count(*) AS c FROM history.orders WHERE _op = 'R' GROUP BY ALL HAVING count(*) > 1)`,
  );
  const lastCopy = await query(
    `SELECT count(*), count(DISTINCT order_id), coalesce(max(_seq) - min(_seq) + 1 - count(DISTINCT _seq), 0) FROM history.orders
      WHERE _op = 'R' AND _commit_ts = (SELECT max(_commit_ts) FROM history.orders WHERE _op = 'R')`,
  );
  const [src_tx] = await sql`SELECT count(DISTINCT xid)::int AS n FROM soak_audit`;

  // Order by order: the sequence of (op, status) in history vs the audit.
  const token = (op: string, status: unknown) => (op === 'D' ? 'D' : `${op}:${status}`);
  const expected = new Map<string, string[]>();
  for (const [id, op, status] of await sql`SELECT order_id::text, op, status FROM soak_audit ORDER BY id`.values()) {
    const list = expected.get(String(id)) ?? [];
    list.push(token(String(op), status));
    expected.set(String(id), list);
  }
  const actual = new Map<string, string[]>();
  for (const [id, op, status] of await query(
    `SELECT CAST(order_id AS VARCHAR), _op, status FROM history.orders WHERE _op <> 'R' ORDER BY _lsn, _seq`,
  )) {
    const list = actual.get(String(id)) ?? [];
    list.push(token(String(op), status));
    actual.set(String(id), list);
  }
  let changesExpected = 0;
  let changesInHistory = 0;
  let changesLost = 0;
  let changesExtra = 0;
  let misordered = 0;
  for (const id of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(id) ?? [];
    const a = actual.get(id) ?? [];
    changesExpected += e.length;
    changesInHistory += a.length;
    if (e.join(',') === a.join(',')) continue;
    const { missing, extra } = multisetDiff(e, a);
    changesLost += missing;
    changesExtra += extra;
    if (missing === 0 && extra === 0) misordered++;
    note(`order ${id}: source changes ${e.join(',')} / history ${a.join(',')}`);
  }
  return {
    rowsCompared: src.size,
    sourceMd5: sums.source,
    mirrorMd5: sums.mirror,
    rowsLost,
    rowsDiffering,
    rowsExtra,
    changesExpected,
    changesInHistory,
    changesLost,
    changesDuplicated: Math.max(changesExtra, Number(dupRows[0]![1])),
    duplicatePositions,
    seqGaps: Number(gaps[0]![1]),
    misordered,
    transactionsSource: Number(src_tx!.n),
    transactionsHistory: Number(gaps[0]![0]),
    copiedOrders: Number(copies[0]![0]),
    copiedTwice: Number(copies[0]![1]),
    copyPositionsTwice: Number(copyDups[0]![0]),
    lastCopyRows: Number(lastCopy[0]![0]),
    lastCopyOrders: Number(lastCopy[0]![1]),
    copyPositionsMissing: Number(lastCopy[0]![2]),
    examples,
  };
}

/** How many items of `expected` are missing from `actual`, and how many of `actual` are beyond `expected` (as multisets). */
function multisetDiff(expected: string[], actual: string[]): { missing: number; extra: number } {
  const counts = new Map<string, number>();
  for (const t of expected) counts.set(t, (counts.get(t) ?? 0) + 1);
  let extra = 0;
  for (const t of actual) {
    const c = counts.get(t) ?? 0;
    if (c > 0) counts.set(t, c - 1);
    else extra++;
  }
  let missing = 0;
  for (const c of counts.values()) missing += c;
  return { missing, extra };
}
