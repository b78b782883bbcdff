import type { BatchSink, ChangeBatch } from '../change/index.ts';

/** The bus between source and warehouse: inline (in-process) or Kafka. */
export interface Bus {
  /** Resolves when the batch is durable downstream: inline = committed in DuckDB, kafka = acked by all replicas. */
  publish(batch: ChangeBatch, signal?: AbortSignal): Promise<void>;
  /** Delivers batches to the sink until the signal aborts; resolves when drained. */
  run(sink: BatchSink, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
