import type { QueryEngine } from '../warehouse/query.ts';
import type { Metrics } from '../metrics/index.ts';
import type { Alerts } from './alerts.ts';
import type { AnalyticsConfig } from './analytics/sql.ts';

/** A component's readiness as /readyz reports it. */
export interface Readiness {
  ready: boolean;
  detail?: string;
  /** Ready, but not at full health (e.g. the last archive pass left work): /readyz 200, status "degraded", detail as a reason. */
  degraded?: boolean;
}

/** A mirrored table as GET /v1/tables lists it. */
export interface TableInfo {
  name: string;
  rowCount: number;
  columns: { name: string; type: string }[];
}

/** Everything the API needs from the appliance. */
export interface ApiDeps {
  query: QueryEngine;
  tables: () => Promise<TableInfo[]>;
  readiness: () => Record<string, Readiness>;
  /** Pipeline state for GET /v1/status (JSON-safe). */
  status?: () => Record<string, unknown>;
  version: string;
  /** POST /v1/admin/archive: runs one tiering pass and answers with what moved. */
  archive?: () => Promise<unknown>;
  /** POST /v1/admin/resnapshot: copies one table again while the pipeline runs (throws AppError with a code). */
  resnapshot?: (table: string) => void;
  /** The warehouse's write counter (stats.writes): analytics answers are cached per position; none, no cache. */
  position?: () => number;
  /** [analytics]: the table and columns of the business endpoints; default the demo shop. */
  analytics?: AnalyticsConfig;
  /** The appliance's Prometheus registry (GET /metrics); the API adds its request families. */
  metrics?: Metrics;
  /** [alerts] thresholds, reflected in /readyz (degraded) and /metrics. */
  alerts?: Alerts;
  /** Largest accepted request body in bytes (413 beyond); default 1 MiB. */
  bodyLimitBytes?: number;
  /** Bearer tokens; empty = no authentication. */
  tokens?: { token: string; scope: 'read' | 'admin' }[];
}

/** The JSON error body of every failed request. */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}
