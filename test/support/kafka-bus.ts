import type { KafkaBusOptions } from '../../src/bus/index.ts';

/** Kafka bus options for tests against the mock cluster. */
export function kafkaOptions(bootstrap: string[], prefix: string, extra: Partial<KafkaBusOptions> = {}): KafkaBusOptions {
  return {
    brokers: bootstrap,
    topicPrefix: prefix,
    partitions: 3,
    replicationFactor: 3,
    instance: 0,
    instances: 1,
    idempotent: false, // producer id -1; tests of the idempotent producer (producer id and sequences, the config's default) say `idempotent: true`
    compression: 'none',
    lingerMs: 2,
    batchRows: 1000,
    maxLag: 3000, // the mock keeps 5 MB per partition: never let the producer outrun the consumer past that
    deadLetterTopic: `${prefix}-dead-letter`,
    version: 'test',
    ...extra,
  };
}
