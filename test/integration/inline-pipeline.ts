import { join } from 'node:path';
import { createInlineBus } from '../../src/bus/index.ts';
import { startPipeline } from '../../src/pipeline.ts';
import type { SourceOptions, SourceStatus } from '../../src/source/index.ts';
import { createWarehouse, type Warehouse } from '../../src/warehouse/index.ts';

/** An in-process source -> inline bus -> warehouse pipeline on `<dir>/<slot>.duckdb`, for integration tests. */
export interface InlinePipeline {
  warehouse: Warehouse;
  status: SourceStatus;
  stop(): Promise<void>;
}

export async function startInlinePipeline(
  dir: string,
  source: Partial<SourceOptions> & { url: string; slot: string },
  warn?: (m: string) => void,
  /** Also receives the pipeline's log lines. */
  onLog?: (m: string) => void,
): Promise<InlinePipeline> {
  const warehouse = await createWarehouse({
    path: join(dir, `${source.slot}.duckdb`), memoryLimit: '256MB', threads: 1, stream: source.slot, ...(warn ? { warn } : {}),
  });
  const pipeline = startPipeline({
    warehouse,
    bus: createInlineBus(),
    source: {
      publication: `${source.slot}_pub`, tables: [], batchRows: 200, batchMs: 50, statusIntervalMs: 200, connectTimeoutS: 10,
      ...source,
    },
    log: (m) => {
      onLog?.(m);
      if (process.env.IT_DEBUG) console.error(`[${source.slot}]`, m);
    },
  });
  return {
    warehouse,
    status: pipeline.source!.status,
    async stop() {
      await pipeline.stop();
      await warehouse.close();
    },
  };
}
