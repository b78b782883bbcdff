import type { BatchSink } from './change/index.ts';
import type { Bus } from './bus/index.ts';
import { createSource, type Source, type SourceOptions } from './source/index.ts';
import type { Warehouse } from './warehouse/index.ts';

/** What the pipeline is built from; `source: null` runs the bus and warehouse only (a consuming instance). */
export interface PipelineOptions {
  warehouse: Warehouse;
  /** Where the bus delivers (default the warehouse), e.g. the warehouse wrapped by metrics. */
  sink?: BatchSink;
  bus: Bus;
  source: SourceOptions | null;
  log(message: string): void;
}

/** source -> bus -> warehouse, running. */
export interface Pipeline {
  source: Source | null;
  /** Stops in data-flow order: the source publishes and confirms its last batch through the still-running bus. */
  stop(): Promise<void>;
}

/** Starts the bus (delivering to the warehouse) and the source (publishing to the bus). */
export function startPipeline(opts: PipelineOptions): Pipeline {
  const { warehouse, bus } = opts;
  const sourceStop = new AbortController();
  const busStop = new AbortController();
  const busDone = bus.run(opts.sink ?? warehouse, busStop.signal);
  const source = opts.source
    ? createSource(opts.source, {
        publish: (batch) => bus.publish(batch, busStop.signal),
        snapshotDone: async (slot) => (await warehouse.progress.snapshotState(slot)).status === 'done',
        mirroredTables: async () => (await warehouse.tables()).map((t) => t.name),
        // Inline: what the warehouse committed is durable, so the stream resumes after it (nothing replayed).
        durableLsn: bus.inline ? async () => warehouse.progress.current.ackLsn : undefined,
        // Inline: the copy's chunks go to the warehouse as raw COPY output, recorded done with their rows.
        recordedCopy: bus.inline
          ? async (slot) => ({ ...(await warehouse.progress.snapshotState(slot)), chunks: await warehouse.copyChunks(slot) })
          : undefined,
        publishAhead: bus.publishAhead,
        wireRows: bus.wireRows,
        log: opts.log,
      })
    : null;
  // Kafka: the consumer asks for a re-copy when a layout change cannot be applied in place.
  if (source) bus.setRecopy?.((table) => source.resnapshot(table));
  const sourceDone = source?.run(sourceStop.signal) ?? Promise.resolve();
  let stopping: Promise<void> | null = null;
  return {
    source,
    stop() {
      stopping ??= (async () => {
        sourceStop.abort();
        await sourceDone;
        busStop.abort();
        await busDone;
        await bus.close();
      })();
      return stopping;
    },
  };
}
