import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/index.ts';
import type { Warehouse } from '../warehouse/index.ts';
import { parseSize } from './cache.ts';
import { createTiering, type Tiering, type TieringOptions } from './index.ts';

/** The tiering options of a validated config. */
export function tieringOptions(config: Config): TieringOptions {
  const t = config.tiering;
  return {
    hotDays: t.hot_days,
    warmDays: t.warm_days,
    warmDir: t.warm_dir,
    coldUrl: t.cold_url,
    s3: {
      endpoint: t.s3_endpoint,
      region: t.s3_region,
      accessKeyId: t.s3_access_key_id,
      secretAccessKey: t.s3_secret_access_key,
    },
    schedule: t.schedule,
    graceMinutes: t.grace_minutes,
    coldCacheDir: t.cold_cache_dir,
    coldCacheSize: t.cold_cache_size,
    compactMinFiles: t.compact_min_files,
    compactDeletedRatio: t.compact_deleted_ratio,
    maxFileRows: t.max_file_rows,
    maxFileBytes: parseSize(t.max_file_size),
    vectorMinRows: t.deletion_vector_min_rows,
    tables: Object.fromEntries(
      Object.entries(t.tables).map(([name, v]) => [name, { timeColumn: v.time_column, ...(v.retention_days ? { retentionDays: v.retention_days } : {}) }]),
    ),
  };
}

/** The tiering stage of a config over a warehouse. */
export function createTieringFromConfig(config: Config, warehouse: Warehouse, log: Logger, metrics?: Metrics): Tiering {
  return createTiering(tieringOptions(config), {
    exclusive: (fn) => warehouse.exclusive(fn),
    connect: () => warehouse.connect(),
    onLayoutChange: (fn) => warehouse.onLayoutChange(fn),
    log,
    ...(metrics ? { metrics } : {}),
  });
}
