import type { Change, PartitionOffset, TableSchema } from '../change/index.ts';
import type { Decoded, PoisonError } from './kafka-decode.ts';

/** One record as the consumer buffers it. */
export type Entry = { offset: bigint; decoded: Decoded } | { offset: bigint; poison: PoisonError; key?: string; value: Buffer };

/**
 * Why an owned partition is held: its events are skipped (they are superseded) until a copy of its
 * table arrives (the reset at the head of a copy, op `t` with lsn 0), which replaces the mirror.
 */
export interface Hold {
  code: 'KAFKA_OFFSET_OUT_OF_RANGE' | 'RECOPY_NEEDED';
  message: string;
  since: number;
}

/** One owned partition: where we read, where the last applied change stands, what is fetched but not applied. */
export interface Owned {
  topic: string;
  topicId: string;
  partition: number;
  /** Next offset to apply, and the order key (pos_lsn, pos_ord) of the last change applied. */
  next: bigint;
  lsn: bigint;
  ord: number;
  /** Offset after the last entry taken from the buffer (past `next` while an out-of-range hold skips). */
  readAt: bigint;
  highWatermark: bigint;
  buffer: Entry[];
  hold: Hold | null;
}

/** Where a batch leaves one partition: entries taken from its buffer, and the position after them. */
export interface Taken {
  count: number;
  next: bigint;
  readAt: bigint;
  lsn: bigint;
  ord: number;
  /** A copy's reset was taken: the hold ends once the batch is committed. */
  released: boolean;
}

/** A batch chosen from the buffers, not yet applied: buffers and positions change only once it commits. */
export interface Selection {
  changes: Change[];
  tables: Map<string, TableSchema>;
  ackLsn: bigint;
  poison: { o: Owned; entry: Extract<Entry, { poison: PoisonError }> }[];
  taken: Map<Owned, Taken>;
  duplicates: number;
  superseded: number;
}

/** The event is at or before the position (pos, ord). */
export function atOrBefore(d: Decoded, lsn: bigint, ord: number): boolean {
  return d.pos < lsn || (d.pos === lsn && d.ord <= ord);
}

/** A copy's reset: the first event of a (re-)copy of a table, a truncate at its consistent point. */
export function isCopyReset(d: Decoded): boolean {
  return d.change.op === 'T' && d.change.lsn === 0n;
}

/**
 * Chooses the next batch from the owned partitions' buffers without consuming them: at most `limit`
 * changes, one layout per table, a copy's reset first for its table, a truncate only once every owned
 * partition of its topic has reached it (held partitions skip everything but their copy's reset).
 */
export function selectBatch(owned: Iterable<Owned>, limit: number): Selection {
  const all = [...owned];
  const s: Selection = { changes: [], tables: new Map(), ackLsn: 0n, poison: [], taken: new Map(), duplicates: 0, superseded: 0 };
  const cursor = (o: Owned): Taken => {
    let t = s.taken.get(o);
    if (!t) {
      t = { count: 0, next: o.next, readAt: o.readAt, lsn: o.lsn, ord: o.ord, released: false };
      s.taken.set(o, t);
    }
    return t;
  };
  const headOf = (o: Owned) => o.buffer[s.taken.get(o)?.count ?? 0];
  /** Held and its copy's reset not taken yet in this batch. */
  const held = (o: Owned) => o.hold !== null && !s.taken.get(o)?.released;
  const step = (o: Owned, e: Entry, d?: Decoded) => {
    const t = cursor(o);
    t.count++;
    t.readAt = e.offset + 1n;
    // An out-of-range hold keeps the stored offset: a restart finds the gap again instead of reading past it.
    if (!(held(o) && o.hold!.code === 'KAFKA_OFFSET_OUT_OF_RANGE')) t.next = e.offset + 1n;
    if (d && !atOrBefore(d, t.lsn, t.ord)) {
      t.lsn = d.pos;
      t.ord = d.ord;
    }
  };
  const partitionsOf = (topic: string) => all.filter((o) => o.topic === topic);
  /** Every partition of the topic that must take this truncate has it at its head. */
  const truncateReady = (topic: string, d: Decoded) =>
    partitionsOf(topic).every((o) => {
      if (held(o) && !isCopyReset(d)) return true; // a held partition skips it
      const h = headOf(o);
      return h !== undefined && 'decoded' in h && h.decoded.change.op === 'T' && h.decoded.pos === d.pos && h.decoded.ord === d.ord;
    });
  const fits = (d: Decoded) => {
    const known = s.tables.get(d.change.table);
    if (known && known.columns !== d.table.columns) return false;
    return !(isCopyReset(d) && s.changes.some((c) => c.table === d.change.table));
  };
  const take = (d: Decoded) => {
    s.changes.push(d.change);
    s.tables.set(d.change.table, d.table);
    if (d.change.lsn > s.ackLsn) s.ackLsn = d.change.lsn;
  };

  // Fair across partitions: a pass takes at most `share` changes from each. Taking each partition's
  // buffer whole, in order, let the first partitions fill every batch of a steady stream while the last
  // ones waited: they fell behind by seconds (commit-to-queryable p99), then by the whole max_lag, past
  // what a small broker retains (the 1M-row benchmark hung at OFFSET_OUT_OF_RANGE that way).
  const share = Math.max(1, Math.ceil(limit / Math.max(1, all.length)));
  let progress = true;
  let cut = false;
  while (progress && !cut && s.changes.length < limit) {
    progress = false;
    for (const o of all) {
      if (cut) break;
      let quota = share;
      while (s.changes.length < limit && quota > 0) {
        const head = headOf(o);
        if (!head) break;
        if ('poison' in head) {
          s.poison.push({ o, entry: head });
          step(o, head);
          progress = true;
          continue;
        }
        const d = head.decoded;
        const t = s.taken.get(o);
        if (atOrBefore(d, t?.lsn ?? o.lsn, t?.ord ?? o.ord)) {
          s.duplicates++; // written twice by a producer retry (or a source restart)
          step(o, head);
          progress = true;
          continue;
        }
        if (held(o) && !isCopyReset(d)) {
          s.superseded++; // the table is copied again; the copy replaces what this partition missed
          step(o, head, d);
          progress = true;
          continue;
        }
        if (d.change.op === 'T') {
          if (!truncateReady(o.topic, d) || !fits(d)) {
            if (truncateReady(o.topic, d)) cut = true;
            break;
          }
          for (const other of partitionsOf(o.topic)) {
            if (held(other) && !isCopyReset(d)) continue;
            if (isCopyReset(d) && other.hold) cursor(other).released = true; // before the step: the stored offset moves past the reset
            step(other, headOf(other)!, d);
          }
          take(d);
          quota--;
          progress = true;
          continue;
        }
        if (!fits(d)) {
          cut = true;
          break;
        }
        take(d);
        step(o, head, d);
        quota--;
        progress = true;
      }
    }
  }
  return s;
}

/** Makes a committed selection the partitions' state: drops the taken entries, moves the positions, ends holds. */
export function commitSelection(s: Selection): void {
  for (const [o, t] of s.taken) {
    o.buffer.splice(0, t.count);
    o.next = t.next;
    o.readAt = t.readAt;
    o.lsn = t.lsn;
    o.ord = t.ord;
    if (t.released) o.hold = null;
  }
}

/** The stored positions a selection's batch carries (written in the same warehouse transaction as its rows). */
export function offsetsOf(s: Selection): PartitionOffset[] {
  return [...s.taken].filter(([, t]) => t.count > 0).map(([o, t]) => ({ topic: o.topic, partition: o.partition, next: t.next, lsn: t.lsn, ord: t.ord }));
}
