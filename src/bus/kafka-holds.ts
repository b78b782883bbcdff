import type { Consumer } from '@platformatic/kafka';
import type { RecopyNeeded } from '../errors.ts';
import type { Owned } from './kafka-select.ts';

/**
 * Holding partitions whose events cannot be applied: their events are skipped (superseded) until a copy
 * of their table arrives (kafka-select.ts), and the reason stands in /v1/status (and, for lost data, /readyz).
 */
export class Holds {
  /** Tables whose copy the source has not accepted yet. */
  private readonly wanted = new Set<string>();

  constructor(
    private readonly prefix: string,
    private readonly status: { offsetOutOfRange: number },
    private readonly deps: { recopy?(): ((table: string) => void) | undefined; log(message: string): void },
    private readonly consumer: Consumer,
  ) {}

  /**
   * The warehouse cannot apply a layout change in place (an incompatible type change, a column PostgreSQL
   * filled by rewriting the table): the table's partitions are held (their events skipped: the copy
   * supersedes them) and the source is asked to copy the table again, as the inline bus does.
   */
  forCopy(owned: Iterable<Owned>, e: RecopyNeeded): void {
    const all = [...owned];
    for (const table of e.tables) {
      const topic = `${this.prefix}.${table}`;
      for (const o of all) {
        if (o.topic === topic && o.hold?.code !== 'KAFKA_OFFSET_OUT_OF_RANGE') o.hold = { code: 'RECOPY_NEEDED', message: e.message, since: Date.now() };
      }
      this.wanted.add(table);
      this.deps.log(`kafka: ${e.message}; holding ${topic} until the copy arrives`);
    }
    this.requestCopies();
  }

  /** Asks the source (when this instance reads the slot) for the copies still wanted; retried each round until accepted. */
  requestCopies(): void {
    const recopy = this.deps.recopy?.();
    if (!recopy) return;
    for (const table of this.wanted) {
      try {
        recopy(table);
        this.wanted.delete(table);
      } catch {
        // not streaming right now (copying, reconnecting): asked again next round
      }
    }
  }

  /**
   * The stored offset is no longer on the brokers (retention deleted it before this instance applied it).
   * Nothing is skipped silently: the partition is held, the stored offset stays where it is, and the
   * error stands in /readyz and /v1/status until a copy of the table replaces what was lost.
   */
  async outOfRange(o: Owned, at: bigint): Promise<void> {
    const md = await this.consumer.listOffsets({ topics: [o.topic], partitions: { [o.topic]: [o.partition] }, timestamp: -2n });
    const earliest = md.get(o.topic)?.[o.partition] ?? 0n;
    const table = o.topic.slice(this.prefix.length + 1);
    const message =
      `${o.topic}[${o.partition}]: offset ${at} is no longer on the brokers (retention deleted it; the partition now starts at ${earliest}), ` +
      `so changes of ${table} were lost before this instance applied them. Its rows from this partition are held (not updated) until the ` +
      `table is copied again: POST /v1/admin/resnapshot {"table": "${table}"} on the instance that reads the slot; then raise the topic's retention or lower bus.max_lag`;
    if (o.hold?.code !== 'KAFKA_OFFSET_OUT_OF_RANGE') {
      this.status.offsetOutOfRange++;
      this.deps.log(`kafka: ${message}`);
    }
    o.hold = { code: 'KAFKA_OFFSET_OUT_OF_RANGE', message, since: Date.now() };
    o.buffer = [];
    o.readAt = earliest; // read on to find the copy's reset; the stored offset moves only past it
  }
}
