import type { Metrics } from '../metrics/index.ts';
import type { TieringStatus } from './index.ts';

/** Registers the tiering stage's own families: cold cache size, passes by result and their duration. */
export function registerTieringMetrics(metrics: Metrics, status: TieringStatus): { passDone(result: string, seconds: number): void } {
  // ducktail_tier_files/bytes/rows{tier} are read from the manifest at scrape time by src/pipeline-metrics.ts.
  metrics.gauge('tier_cold_cache_bytes', { help: 'Bytes in the local cache of cold S3 files.', collect: (g) => g.set(status.coldCacheBytes) });
  const passes = metrics.counter<'result'>('tier_passes_total', { help: 'Archive passes by result (done, partial, failed).', labelNames: ['result'] });
  const duration = metrics.histogram('tier_pass_duration_seconds', { help: 'Duration of archive passes.' });
  return {
    passDone(result, seconds) {
      passes.inc({ result });
      duration.observe(seconds);
    },
  };
}
