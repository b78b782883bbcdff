/**
 * The appliance's Prometheus registry (prom-client), shared by every stage: a stage receives `metrics`
 * in its deps and registers its own families with one call. Names get the `ducktail_` prefix.
 * See docs/TEAM-NOTES.md ("Adding a metric").
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Names are prefixed once: "bus_consumer_lag" and "ducktail_bus_consumer_lag" are the same family. */
export const PREFIX = 'ducktail_';

/** Seconds buckets for apply, query and latency histograms (5 ms .. 60 s). */
export const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/** A metric family's options; `collect` runs at every scrape (read a status object there; may be async). */
export interface MetricOptions<L extends string> {
  help: string;
  labelNames?: readonly L[];
}

/** The registry handed to stages. Registering the same name twice returns the first family. */
export interface Metrics {
  readonly registry: Registry;
  counter<L extends string = string>(name: string, opts: MetricOptions<L> & { collect?: (c: Counter<L>) => void | Promise<void> }): Counter<L>;
  gauge<L extends string = string>(name: string, opts: MetricOptions<L> & { collect?: (g: Gauge<L>) => void | Promise<void> }): Gauge<L>;
  histogram<L extends string = string>(name: string, opts: MetricOptions<L> & { buckets?: number[] }): Histogram<L>;
  /** The exposition text (Prometheus text format 0.0.4) and its content type. */
  render(): Promise<{ text: string; contentType: string }>;
}

const full = (name: string) => (name.startsWith(PREFIX) ? name : PREFIX + name);

/** Creates an empty registry (one per appliance, so tests may run several). */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const existing = (name: string) => registry.getSingleMetric(full(name));
  return {
    registry,
    counter(name, opts) {
      const found = existing(name);
      if (found) return found as Counter<never>;
      const collect = opts.collect;
      return new Counter({
        name: full(name),
        help: opts.help,
        labelNames: opts.labelNames ?? [],
        registers: [registry],
        ...(collect ? { collect(this: Counter) { return collect(this as Counter<never>); } } : {}),
      });
    },
    gauge(name, opts) {
      const found = existing(name);
      if (found) return found as Gauge<never>;
      const collect = opts.collect;
      return new Gauge({
        name: full(name),
        help: opts.help,
        labelNames: opts.labelNames ?? [],
        registers: [registry],
        ...(collect ? { collect(this: Gauge) { return collect(this as Gauge<never>); } } : {}),
      });
    },
    histogram(name, opts) {
      const found = existing(name);
      if (found) return found as Histogram<never>;
      return new Histogram({
        name: full(name),
        help: opts.help,
        labelNames: opts.labelNames ?? [],
        buckets: opts.buckets ?? SECONDS_BUCKETS,
        registers: [registry],
      });
    },
    async render() {
      return { text: await registry.metrics(), contentType: registry.contentType };
    },
  };
}
