import { resolve } from 'node:path';
import { checkListen, createAlerts, createApi, serveApi } from './api/index.ts';
import { type Bus, createInlineBus, createKafkaBus } from './bus/index.ts';
import type { Config } from './config/index.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics/index.ts';
import { instrumentSink, registerPipelineMetrics, registerTierMetrics, replicationLagSeconds } from './pipeline-metrics.ts';
import { startPipeline } from './pipeline.ts';
import { createTieringFromConfig } from './tiering/index.ts';
import type { Source, SourceStatus } from './source/index.ts';
import { formatLsn } from './source/lsn.ts';
import { createQueryEngine, lockDownInstance } from './warehouse/query.ts';
import { createWarehouse, type Warehouse } from './warehouse/index.ts';

/** A running appliance: every stage started, stopped in order by `stop()`. */
export interface Appliance {
  url: string;
  warehouse: Warehouse;
  source: Source | null;
  /** Resolves when the appliance has stopped; `onStep` hears each step as it starts (for a bounded shutdown's report). */
  stop(onStep?: (step: string) => void): Promise<void>;
}

/** The composition root: builds and starts source -> bus -> warehouse and the API from one config. */
export async function startAppliance(config: Config, opts: { log: Logger; version: string }): Promise<Appliance> {
  const log = opts.log;
  checkListen(config.api.listen, config.api.tokens.length > 0, config.api.allow_unauthenticated_remote);
  const warehouse = await createWarehouse({
    path: config.warehouse.path,
    memoryLimit: config.warehouse.memory_limit,
    threads: config.warehouse.threads,
    checkpointWalMb: config.warehouse.checkpoint_wal_mb,
    stream: config.source.slot,
    warn: (m) => log.warn(m),
  });
  const metrics = createMetrics();
  const tiering = createTieringFromConfig(config, warehouse, log.child('tiering'), metrics);
  const allowed = [resolve(config.tiering.warm_dir), ...tiering.readDirs, warehouse.stageDir];
  await lockDownInstance(warehouse.instance, { allowedDirectories: allowed });
  await tiering.init();
  const tieringStop = new AbortController();
  tiering.schedule(tieringStop.signal);
  const bus = createBus(config, warehouse, log, opts.version);
  const { source, stop: stopPipeline } = startPipeline({
    warehouse,
    sink: instrumentSink(metrics, warehouse),
    bus,
    source: config.source.enabled
      ? {
          url: config.source.url,
          slot: config.source.slot,
          publication: config.source.publication,
          tables: config.source.tables,
          batchRows: config.warehouse.batch_rows,
          batchMs: config.warehouse.batch_ms,
          batchAdaptive: config.warehouse.batch_adaptive,
          statusIntervalMs: config.source.status_interval_ms,
          heartbeatIntervalS: config.source.heartbeat_interval_s,
          receiveTimeoutS: config.source.receive_timeout_s,
          connectTimeoutS: config.source.connect_timeout_s,
          copyWorkers: config.source.copy_workers,
          copyChunkRows: config.source.copy_chunk_rows,
        }
      : null,
    log: (m) => log.child('source').info(m),
  });

  registerPipelineMetrics(metrics, { source: () => source?.status ?? null, dbPath: config.warehouse.path, backfill: () => warehouse.stats.backfill });
  registerTierMetrics(metrics, warehouse.instance);
  registerBusMetrics(metrics, bus);
  const alerts = createAlerts(
    config.alerts,
    {
      replicationLagSeconds: () => (source ? replicationLagSeconds(source.status, Date.now()) : null),
      consumerLagMessages: () => consumerLag(bus.status?.()),
      lastBatchApply: () =>
        warehouse.stats.lastCommitAt === null ? null : { seconds: warehouse.stats.lastApplyMs / 1000, at: warehouse.stats.lastCommitAt },
    },
    metrics,
  );
  const query = createQueryEngine({ instance: warehouse.instance, timeoutMs: config.api.query_timeout_ms, prepare: (sql) => tiering.prepareQuery(sql) });
  const app = createApi({
    query,
    tables: () =>
      tiering.prepareQuery().then(async (release) => {
        try {
          return await warehouse.tables();
        } finally {
          release();
        }
      }),
    version: opts.version,
    tokens: config.api.tokens,
    analytics: config.analytics,
    position: () => warehouse.stats.writes,
    metrics,
    alerts,
    bodyLimitBytes: config.api.body_limit_bytes,
    status: () => ({ ...pipelineStatus(source, warehouse), tiering: tiering.status, bus: bus.status?.() ?? { kind: config.bus.kind } }),
    archive: () => tiering.archive(tieringStop.signal),
    resnapshot: source ? (table: string) => source.resnapshot(table) : undefined,
    readiness: () => ({
      source: source ? sourceReadiness(source.status) : { ready: true, detail: 'disabled on this instance' },
      warehouse: { ready: true, detail: `${warehouse.stats.batches} batches applied` },
      // A pass that left work (S3 down, a wrong time_column) does not stop queries: degraded, not 503.
      tiering: { ready: true, degraded: tiering.status.lastError !== null, detail: tiering.status.lastError ?? `${tiering.status.passes} passes` },
      bus: bus.readiness?.() ?? { ready: true, detail: config.bus.kind },
    }),
  });
  const server = await serveApi(app, { listen: config.api.listen }).catch(async (e: unknown) => {
    tieringStop.abort();
    await stopPipeline(); // e.g. the port is taken: leave nothing running behind the error
    await warehouse.close();
    throw e;
  });
  log.info(`api listening on ${server.url}`);

  let stopping: Promise<void> | null = null;
  return {
    url: server.url,
    warehouse,
    source,
    stop(onStep = () => {}) {
      stopping ??= (async () => {
        tieringStop.abort();
        onStep('the running tiering pass');
        await tiering.idle(); // a running pass stops at its next step (the signal) and commits nothing half-done
        onStep('draining the pipeline');
        await stopPipeline();
        onStep('stopping the API');
        await server.stop();
        onStep('closing the warehouse');
        await warehouse.close();
      })();
      return stopping;
    },
  };
}

/**
 * The source is ready while it streams, unless it keeps failing: a stream that reconnects and fails
 * again (e.g. a batch the warehouse refuses every time) is not ready after 3 failures with no batch between.
 */
export function sourceReadiness(s: SourceStatus): { ready: boolean; detail: string } {
  if (s.failuresInARow >= 3) return { ready: false, detail: `${s.failuresInARow} failures in a row, last: ${s.error}` };
  return { ready: s.phase === 'streaming', detail: s.error ?? s.phase };
}

/** Total Kafka consumer lag from the bus status (sum over owned partitions); null for the inline bus. */
function consumerLag(status: Record<string, unknown> | undefined): number | null {
  const partitions = (status?.consumer as { partitions?: { lag: string }[] } | undefined)?.partitions;
  if (!partitions) return null;
  return partitions.reduce((sum, p) => sum + Number(p.lag), 0);
}

/** Kafka consumer lag per owned partition and dead letters, from the bus status at each scrape. */
function registerBusMetrics(metrics: Metrics, bus: Bus): void {
  const consumer = () =>
    (bus.status?.() as { consumer?: { partitions: { topic: string; partition: number; lag: string }[]; deadLetters: number } } | undefined)?.consumer;
  metrics.gauge<'topic' | 'partition'>('bus_consumer_lag_messages', {
    help: 'Kafka messages of each owned partition not yet applied to the warehouse.',
    labelNames: ['topic', 'partition'],
    collect(g) {
      g.reset();
      for (const p of consumer()?.partitions ?? []) g.set({ topic: p.topic, partition: String(p.partition) }, Number(p.lag));
    },
  });
  metrics.gauge('bus_dead_letters', {
    help: 'Kafka messages sent to the dead-letter topic since start (not JSON, not the envelope, or a value that does not fit).',
    collect(g) {
      g.set(consumer()?.deadLetters ?? 0);
    },
  });
}

/** The bus of `bus.kind`: inline, or Kafka with its partition positions kept in the warehouse. */
function createBus(config: Config, warehouse: Warehouse, log: Logger, version: string): Bus {
  const b = config.bus;
  if (b.kind === 'inline') return createInlineBus();
  return createKafkaBus(
    {
      brokers: b.brokers,
      topicPrefix: b.topic_prefix,
      partitions: b.partitions,
      replicationFactor: b.replication_factor,
      instance: b.instance,
      instances: b.instances,
      idempotent: b.idempotent,
      compression: b.compression,
      eventSchema: b.event_schema,
      lingerMs: b.linger_ms,
      maxBatchBytes: b.max_batch_bytes,
      maxLag: b.max_lag,
      maxPartitionLag: b.max_partition_lag,
      batchRows: config.warehouse.batch_rows,
      deadLetterTopic: b.dead_letter_topic || `${b.topic_prefix}-dead-letter`,
      version: `ducktail-${version}`,
    },
    { loadOffsets: () => warehouse.progress.kafkaOffsets(), log: (m) => log.child('bus').info(m) },
  );
}

/** GET /v1/status: where the source and the warehouse are (LSNs as PostgreSQL text, times as ISO). */
function pipelineStatus(source: Source | null, warehouse: Warehouse): Record<string, unknown> {
  const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null);
  const s = source?.status;
  return {
    source: s
      ? {
          phase: s.phase,
          error: s.error,
          restarts: s.restarts,
          receivedLsn: formatLsn(s.receivedLsn),
          confirmedLsn: formatLsn(s.flushedLsn),
          pendingChanges: s.pendingChanges,
          inflightBatches: s.inflightBatches,
          snapshot: s.snapshot,
          recopying: s.recopying,
          lastMessageAt: iso(s.lastMessageAt),
          lastCommitAt: iso(Number(s.lastCommitTimeUs / 1000n)),
          ...slotLag(s),
        }
      : { phase: 'disabled' },
    warehouse: {
      ...warehouse.stats,
      lastCommitAt: iso(warehouse.stats.lastCommitAt),
      appliedLsn: formatLsn(warehouse.progress.current.ackLsn),
    },
  };
}

/** Slot lag: bytes from PostgreSQL, seconds since the oldest commit received and not yet durable. */
function slotLag(s: SourceStatus): Record<string, unknown> {
  const now = Date.now();
  const lagSeconds =
    s.unconfirmedSinceUs > 0n ? Math.max(0, (now - Number(s.unconfirmedSinceUs / 1000n)) / 1000)
    : s.phase === 'streaming' ? 0
    : s.lastMessageAt > 0 ? (now - s.lastMessageAt) / 1000
    : null;
  return {
    lagBytes: s.slot.lagBytes,
    lagSeconds,
    slot: s.slot,
    heartbeat: s.heartbeat,
  };
}
