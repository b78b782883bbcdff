import * as v from 'valibot';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;

const instant = (name: string) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(INSTANT, `"${name}" must be an ISO date (2026-11-24) or date-time (2026-11-24T10:00:00Z)`),
      v.check((s) => !Number.isNaN(Date.parse(DAY.test(s) ? `${s}T00:00:00Z` : s)), `"${name}" is not a valid date`),
    ),
  );
const range = {
  from: v.pipe(instant('from'), v.description('start, inclusive (ISO date or date-time; UTC unless an offset is given)')),
  to: v.pipe(instant('to'), v.description('end, exclusive; a bare date includes that whole day')),
};
const bucket = v.optional(v.picklist(['1m', '1h', '1d'], '"bucket" must be 1m, 1h or 1d'));
const positiveInt = (name: string, max: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, `"${name}" must be a whole number`),
      v.transform(Number),
      v.number(),
      v.minValue(1, `"${name}" must be >= 1`),
      v.maxValue(max, `"${name}" must be <= ${max}`),
    ),
  );

/** Query strings of the analytics endpoints; the same schemas validate requests and describe them in /openapi.json. */
export const AnalyticsQuery = {
  'daily-orders': v.object({ ...range }),
  revenue: v.object({ ...range, bucket: v.pipe(bucket, v.description('bucket width, default 1m')) }),
  'top-customers': v.object({ ...range, limit: v.pipe(positiveInt('limit', 1000), v.description('customers returned, default 10')) }),
  'customer-activity': v.object({ ...range }),
  'orders-by-status': v.object({ ...range }),
  anomalies: v.object({
    ...range,
    bucket: v.pipe(bucket, v.description('bucket width, default [analytics] anomaly_bucket')),
    window: v.pipe(positiveInt('window', 10_000), v.description('buckets in the rolling window, default [analytics] anomaly_window')),
    threshold: v.pipe(
      v.optional(v.pipe(v.string(), v.regex(/^\d+(\.\d+)?$/, '"threshold" must be a positive number'), v.transform(Number), v.number())),
      v.description('|z| reported from, default [analytics] anomaly_threshold'),
    ),
  }),
};

/** An analytics endpoint's name. */
export type AnalyticsName = keyof typeof AnalyticsQuery;

/** Milliseconds of a bucket width. */
export const BUCKET_MS = { '1m': 60_000, '1h': 3_600_000, '1d': 86_400_000 } as const;
/** DuckDB's date_trunc / INTERVAL unit of a bucket width. */
export const BUCKET_UNIT = { '1m': 'minute', '1h': 'hour', '1d': 'day' } as const;

/** Parses a `from`/`to` value to epoch ms (a bare date is midnight UTC; as `to`, the next midnight). */
export function parseInstant(s: string, end: boolean): number {
  if (DAY.test(s)) return Date.parse(`${s}T00:00:00Z`) + (end ? 86_400_000 : 0);
  return Date.parse(/[Z+-]\d{0,2}:?\d{0,2}$/.test(s.slice(10)) ? s : `${s}Z`);
}
