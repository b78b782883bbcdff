import type { Owned } from './kafka-select.ts';

/** Per-partition consumer status for /v1/status. */
export interface PartitionStatus {
  topic: string;
  partition: number;
  nextOffset: string;
  highWatermark: string;
  lag: string;
  /** Set while the partition is held (its events skipped until a copy of its table arrives): why. */
  held?: { code: string; message: string; since: string };
}

/** What the consumer shows in /v1/status (`bus.consumer`) and /readyz. */
export interface ConsumerStatus {
  partitions: PartitionStatus[];
  applied: number;
  deadLetters: number;
  duplicatesSkipped: number;
  /** Events skipped on held partitions: superseded by the copy of their table that ends the hold. */
  supersededSkipped: number;
  /** Times a stored offset was found outside the broker's log (KAFKA_OFFSET_OUT_OF_RANGE). */
  offsetOutOfRange: number;
  error: string | null;
}

/** One owned partition as /v1/status shows it. */
export function partitionStatus(o: Owned): PartitionStatus {
  return {
    topic: o.topic,
    partition: o.partition,
    nextOffset: String(o.next),
    highWatermark: String(o.highWatermark),
    lag: String(o.highWatermark > o.next ? o.highWatermark - o.next : 0n),
    ...(o.hold ? { held: { code: o.hold.code, message: o.hold.message, since: new Date(o.hold.since).toISOString() } } : {}),
  };
}

/**
 * Messages of an owned partition the consumer has still to read, for the producer's limits (`max_lag`,
 * `max_partition_lag`): from its stored offset, or, for a partition held because that offset is gone
 * (KAFKA_OFFSET_OUT_OF_RANGE), from where it reads on looking for its table's copy. The stored offset of such
 * a partition never moves until the copy arrives, and counting from it would hold back that very copy.
 */
export function unread(o: Owned, end = 0n): bigint {
  const hw = end > o.highWatermark ? end : o.highWatermark;
  const at = o.hold?.code === 'KAFKA_OFFSET_OUT_OF_RANGE' ? o.readAt : o.next;
  return hw > at ? hw - at : 0n;
}
