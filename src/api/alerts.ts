import type { Metrics } from '../metrics/index.ts';

/** The [alerts] config section (defaults from the original pipeline's analysis). */
export interface AlertThresholds {
  replication_lag_s: number;
  consumer_lag_messages: number;
  batch_apply_s: number;
  query_s: number;
}

/** Current values the thresholds are compared with; null = not applicable on this instance. */
export interface AlertProbes {
  replicationLagSeconds(): number | null;
  consumerLagMessages(): number | null;
  /** Duration of the last batch apply, and when it ended (epoch ms). */
  lastBatchApply(): { seconds: number; at: number } | null;
}

/** One threshold and whether it is crossed now. */
export interface Alert {
  alert: 'replication_lag' | 'consumer_lag' | 'batch_apply' | 'slow_query';
  firing: boolean;
  value: number | null;
  threshold: number;
  reason: string;
}

/** Evaluates the thresholds; slow queries and slow applies count for RECENT_MS after they happen. */
export interface Alerts {
  evaluate(): Alert[];
  /** Records a query's duration (the API calls this for /v1/query and /v1/analytics/*). */
  observeQuery(seconds: number, endpoint: string): void;
}

/** How long a slow query or a slow batch apply keeps its alert firing. */
export const RECENT_MS = 5 * 60_000;

/** Creates the evaluator and its `ducktail_alert_firing{alert}` / `ducktail_alert_threshold{alert}` gauges. */
export function createAlerts(t: AlertThresholds, probes: AlertProbes, metrics?: Metrics, now: () => number = Date.now): Alerts {
  let slowQuery: { seconds: number; at: number; endpoint: string } | null = null;

  function evaluate(): Alert[] {
    const at = now();
    const lag = probes.replicationLagSeconds();
    const consumer = probes.consumerLagMessages();
    const apply = probes.lastBatchApply();
    const recentApply = apply && at - apply.at <= RECENT_MS ? apply.seconds : null;
    const recentQuery = slowQuery && at - slowQuery.at <= RECENT_MS ? slowQuery : null;
    const alerts: Alert[] = [
      {
        alert: 'replication_lag',
        value: lag,
        threshold: t.replication_lag_s,
        firing: lag !== null && lag > t.replication_lag_s,
        reason: `replication lag ${lag?.toFixed(1)} s > ${t.replication_lag_s} s (alerts.replication_lag_s)`,
      },
      {
        alert: 'consumer_lag',
        value: consumer,
        threshold: t.consumer_lag_messages,
        firing: consumer !== null && consumer > t.consumer_lag_messages,
        reason: `Kafka consumer lag ${consumer} messages > ${t.consumer_lag_messages} (alerts.consumer_lag_messages)`,
      },
      {
        alert: 'batch_apply',
        value: recentApply,
        threshold: t.batch_apply_s,
        firing: recentApply !== null && recentApply > t.batch_apply_s,
        reason: `a batch took ${recentApply?.toFixed(2)} s to apply > ${t.batch_apply_s} s (alerts.batch_apply_s)`,
      },
      {
        alert: 'slow_query',
        value: recentQuery?.seconds ?? null,
        threshold: t.query_s,
        firing: recentQuery !== null,
        reason: `${recentQuery?.endpoint} took ${recentQuery?.seconds.toFixed(2)} s > ${t.query_s} s in the last ${RECENT_MS / 60_000} min (alerts.query_s)`,
      },
    ];
    for (const a of alerts) if (!a.firing) a.reason = a.value === null ? 'no data on this instance' : 'below the threshold';
    return alerts;
  }

  if (metrics) {
    metrics.gauge<'alert'>('alert_firing', {
      help: '1 while the alert threshold is crossed (see [alerts]).',
      labelNames: ['alert'],
      collect: (g) => {
        for (const a of evaluate()) g.set({ alert: a.alert }, a.firing ? 1 : 0);
      },
    });
    metrics.gauge<'alert'>('alert_threshold', {
      help: 'The configured threshold of each alert (seconds, or messages for consumer_lag).',
      labelNames: ['alert'],
      collect: (g) => {
        for (const a of evaluate()) g.set({ alert: a.alert }, a.threshold);
      },
    });
  }

  return {
    evaluate,
    observeQuery(seconds, endpoint) {
      if (seconds > t.query_s) slowQuery = { seconds, at: now(), endpoint };
    },
  };
}
