import type { Metrics } from '../metrics/index.ts';
import type { TieringStatus } from './index.ts';

/** Registers the tiering families: files, rows and bytes per tier, cold cache size, passes by result. */
export function registerTieringMetrics(metrics: Metrics, status: TieringStatus): { passDone(result: string, seconds: number): void } {
  const perTier = (name: string, help: string, pick: (t: { files: number; rows: number; bytes: number }) => number) =>
    metrics.gauge<'tier'>(name, {
      help,
      labelNames: ['tier'],
      collect: (g) => {
        for (const tier of ['warm', 'cold']) g.set({ tier }, pick(status.tiers[tier] ?? { files: 0, rows: 0, bytes: 0 }));
      },
    });
  perTier('tier_files', 'Live Parquet files per tier.', (t) => t.files);
  perTier('tier_rows', 'Rows in live Parquet files per tier (superseded rows included).', (t) => t.rows);
  perTier('tier_bytes', 'Bytes of live Parquet files per tier.', (t) => t.bytes);
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
