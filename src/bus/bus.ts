import type { BatchSink, ChangeBatch } from '../change/index.ts';

/** Whether the bus moves data now, and why not (for /readyz). */
export interface BusReadiness {
  ready: boolean;
  detail: string;
}

/** The bus between source and warehouse: inline (in-process) or Kafka. */
export interface Bus {
  /** Resolves when the batch is durable downstream: inline = committed in DuckDB, kafka = acked by all replicas. */
  publish(batch: ChangeBatch, signal?: AbortSignal): Promise<void>;
  /** Delivers batches to the sink until the signal aborts; resolves when drained. */
  run(sink: BatchSink, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
  /** True for the inline bus: "durable" then means committed in the warehouse, whose position the source may resume from. */
  inline?: boolean;
  /** Batches `publish` may be handed before the earlier ones resolved (it keeps their order); unset = one at a time. */
  publishAhead?: number;
  /** True when the bus carries a change's values as pgoutput's bytes (Change.wire) when it has them: the source then keeps them. */
  wireRows?: boolean;
  /** What the bus reports in /v1/status (Kafka: partitions owned, offsets and lag). */
  status?(): Record<string, unknown>;
  readiness?(): BusReadiness;
  /**
   * Kafka: how the consumer asks the source (same process) to copy a table again when the warehouse
   * cannot apply its layout change in place; the inline bus gets that from the failed publish itself.
   */
  setRecopy?(recopy: (table: string) => void): void;
}
