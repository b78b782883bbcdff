/**
 * Which partitions a fetch request names first. A broker fills a fetch response in request order and
 * leaves the later partitions out once it reaches the request's max_bytes (KIP-74), answering them empty
 * with no error; a partition always named last gets nothing for as long as the ones before it have data,
 * i.e. for as long as the consumer is behind, until retention deletes what it has not read. The Java
 * consumer moves a partition that returned records to the end of its list; so does this.
 *
 * librdkafka's mock (2.15.1) makes it acute: rd_kafka_mock_handle_Fetch adds the return value of
 * rd_kafka_buf_write_kbytes() to its byte count, and for flexible versions (Fetch v12+) that is the record
 * set's *position* in the response plus its length, so after k record sets of S bytes it counts
 * S * k(k+1)/2: with ~0.9 MB per partition (a 10k-change publish over 6 partitions, payload-only and
 * uncompressed) the fifth partition of one leader is cut at 9 MB of an 8 MB limit, every time the first
 * four have data. docs/KAFKA.md tells the whole story.
 */

/** A partition behind the broker whose fetches brought no records for this long is logged (once an episode). */
export const STARVED_LOG_AFTER_MS = 10_000;

export class FetchOrder<P extends object> {
  private readonly served = new WeakMap<P, number>();
  private seq = 0;
  /** Since when a partition has been answered empty while the broker held more; whether that was logged. */
  private readonly starved = new WeakMap<P, { since: number; logged: boolean }>();

  /** The partitions least recently served first (never served = first); ties keep their order. */
  order(parts: P[]): P[] {
    return [...parts].sort((a, b) => (this.served.get(a) ?? 0) - (this.served.get(b) ?? 0));
  }

  /**
   * One answer for `p`: `records` brought, and whether the broker holds more than what was asked from
   * (`behind`). Returns how long `p` has been left empty while behind when that first passes
   * STARVED_LOG_AFTER_MS (for the caller to log), else undefined.
   */
  answered(p: P, records: number, behind: boolean, now = Date.now()): number | undefined {
    if (records > 0) {
      this.served.set(p, ++this.seq);
      this.starved.delete(p);
      return undefined;
    }
    if (!behind) {
      this.starved.delete(p);
      return undefined;
    }
    const s = this.starved.get(p);
    if (!s) {
      this.starved.set(p, { since: now, logged: false });
      return undefined;
    }
    if (s.logged || now - s.since < STARVED_LOG_AFTER_MS) return undefined;
    s.logged = true;
    return now - s.since;
  }
}

/** Plan partitions that brought records in the last answer go to the back of the next request (stable). */
export function gotRecordsLast<T extends { topicId: string; partition: number }>(parts: T[], got: ReadonlySet<string>): T[] {
  const key = (p: T) => (got.has(`${p.topicId}/${p.partition}`) ? 1 : 0);
  return [...parts].sort((a, b) => key(a) - key(b));
}
