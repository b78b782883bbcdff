/**
 * Kafka test service: librdkafka 2.15.1's mock cluster (test/support/kafka-mock/mock.c)
 * as a subprocess, driven over its stdin/stdout line protocol.
 *
 * The mock serves Produce, Metadata, ListOffsets and Fetch; it has no CreateTopics
 * (create topics with `createTopic`) and breaks on consumer-group requests: consume with
 * explicit partition assignment. An idempotent producer must ask InitProducerId for a new
 * id with id -1 / epoch -1 (as Kafka's Java client does): given 0 / 0 the mock tries to
 * bump producer 0's epoch and answers UNKNOWN_PRODUCER_ID.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../src/errors.ts';

const MOCK_SRC_DIR = join(import.meta.dir, 'kafka-mock');
const BUILD_SCRIPT = join(MOCK_SRC_DIR, 'build.sh');
const CACHE_DIR = process.env.KAFKA_MOCK_CACHE ?? join(import.meta.dir, '..', '..', '.cache', 'kafka-mock');
/** Where build.sh puts the mock binary. */
export const KAFKA_MOCK_BIN = join(CACHE_DIR, 'bin', 'kafka-mock');

const START_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const STDERR_TAIL_LINES = 50;

/** Kafka protocol API keys for `pushErrors` (https://kafka.apache.org/protocol#protocol_api_keys). */
export const KAFKA_API_KEY = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  ApiVersions: 18,
  InitProducerId: 22,
} as const;

/**
 * Error codes for `pushErrors`: Kafka protocol codes (https://kafka.apache.org/protocol#protocol_error_codes),
 * plus librdkafka's `_TRANSPORT`, which makes the mock broker drop the connection instead of answering.
 */
export const KAFKA_ERROR = {
  TRANSPORT: '_TRANSPORT',
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
} as const;

/** The mock could not be built, started or driven. */
export class KafkaMockError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KAFKA_MOCK', message, options);
  }
}

/** Options of `startKafkaMock`. */
export interface KafkaMockOptions {
  /** Number of brokers, ids 1..brokers (default 3). */
  brokers?: number;
  /** Copy the mock's (librdkafka's) log to our stderr; default when KAFKA_MOCK_LOG=1. */
  log?: boolean;
}

/** A running mock cluster. Broker ids are 1..brokers. */
export interface KafkaMock {
  /** `host:port` of every broker, for `bootstrapBrokers`. */
  readonly bootstrap: string[];
  readonly brokers: number;
  /** Creates a topic (the mock has no CreateTopics API); replication defaults to min(3, brokers). */
  createTopic(name: string, partitions: number, replication?: number): Promise<void>;
  /** Disconnects broker `id` (-1: all) and refuses new connections; leaders do not move. */
  brokerDown(id: number): Promise<void>;
  /** Lets broker `id` (-1: all) accept connections again. */
  brokerUp(id: number): Promise<void>;
  /** Moves the leader of topic/partition to `broker` (-1: leaderless). */
  setLeader(topic: string, partition: number, broker: number): Promise<void>;
  /** The next `errors.length` requests of `apiKey` (any broker) fail, one error each, in order. */
  pushErrors(apiKey: number, errors: readonly (number | string)[]): Promise<void>;
  /** Drops the errors still queued for `apiKey`. */
  clearErrors(apiKey: number): Promise<void>;
  /** Adds `ms` of round-trip delay to broker `id` (-1: all). */
  setRtt(id: number, ms: number): Promise<void>;
  /** Stops the cluster; idempotent. */
  stop(): Promise<void>;
}

let built: Promise<string> | undefined;

function mtimeMs(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Builds the mock binary if it is missing or older than its sources (about a minute, once); returns its path. */
export function ensureKafkaMockBinary(): Promise<string> {
  const bin = mtimeMs(KAFKA_MOCK_BIN);
  const sources = Math.max(mtimeMs(join(MOCK_SRC_DIR, 'mock.c')) ?? 0, mtimeMs(BUILD_SCRIPT) ?? 0);
  if (bin !== undefined && bin > sources) return Promise.resolve(KAFKA_MOCK_BIN);
  built ??= runBuild().finally(() => {
    built = undefined;
  });
  return built;
}

async function runBuild(): Promise<string> {
  const proc = Bun.spawn(['bash', BUILD_SCRIPT], { stdout: 'pipe', stderr: 'inherit', stdin: 'ignore' });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) {
    throw new KafkaMockError(`building the Kafka mock failed (exit ${code}); run bash ${BUILD_SCRIPT} to see why`);
  }
  return out.trim().split('\n').at(-1) ?? KAFKA_MOCK_BIN;
}

/** Splits a byte stream into lines. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered !== '') yield buffered;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaMockError(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One protocol word: no whitespace, so it cannot split or end a command line. */
function word(value: string | number, what: string): string {
  const text = String(value);
  if (!/^[^\s]+$/.test(text)) throw new KafkaMockError(`${what} must be one word without spaces, got ${JSON.stringify(text)}`);
  return text;
}

function int(value: number, what: string): string {
  if (!Number.isSafeInteger(value)) throw new KafkaMockError(`${what} must be an integer, got ${value}`);
  return String(value);
}

/** Starts a mock Kafka cluster (building it first if needed). */
export async function startKafkaMock(options: KafkaMockOptions = {}): Promise<KafkaMock> {
  const brokers = options.brokers ?? 3;
  const log = options.log ?? process.env.KAFKA_MOCK_LOG === '1';
  const bin = await ensureKafkaMockBinary();

  const proc = Bun.spawn([bin, int(brokers, 'brokers')], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
  const stderrTail: string[] = [];
  void (async () => {
    for await (const line of lines(proc.stderr)) {
      if (log) process.stderr.write(`kafka-mock: ${line}\n`);
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
    }
  })();
  const describeExit = () =>
    `kafka-mock exited (code ${proc.exitCode ?? proc.signalCode}); its last log lines:\n${stderrTail.join('\n')}`;

  const stdout = lines(proc.stdout);
  const first = await withTimeout(stdout.next(), START_TIMEOUT_MS, 'starting kafka-mock').catch((e: unknown) => {
    proc.kill('SIGKILL');
    throw e;
  });
  if (first.done || !first.value.startsWith('BOOTSTRAP ')) {
    proc.kill('SIGKILL');
    await proc.exited;
    throw new KafkaMockError(`kafka-mock did not print its bootstrap address. ${describeExit()}`);
  }
  const bootstrap = first.value.slice('BOOTSTRAP '.length).trim().split(',');

  // Answers come back in the order the commands were written.
  const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  void (async () => {
    for await (const line of stdout) waiting.shift()?.resolve(line);
    await proc.exited;
    const error = new KafkaMockError(describeExit());
    for (const w of waiting.splice(0)) w.reject(error);
  })();

  let stopped = false;
  async function command(...words: string[]): Promise<void> {
    if (stopped || proc.exitCode !== null) throw new KafkaMockError(`kafka-mock is not running: ${words.join(' ')}`);
    const line = words.join(' ');
    const answer = new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }));
    proc.stdin.write(`${line}\n`);
    proc.stdin.flush();
    const reply = await withTimeout(answer, COMMAND_TIMEOUT_MS, `kafka-mock command "${line}"`);
    if (reply !== 'OK') throw new KafkaMockError(`kafka-mock command "${line}" failed: ${reply.replace(/^ERR /, '')}`);
  }

  return {
    bootstrap,
    brokers,
    createTopic: async (name, partitions, replication = Math.min(3, brokers)) =>
      command('topic', word(name, 'topic'), int(partitions, 'partitions'), int(replication, 'replication')),
    brokerDown: async (id) => command('broker_down', int(id, 'broker id')),
    brokerUp: async (id) => command('broker_up', int(id, 'broker id')),
    setLeader: async (topic, partition, broker) =>
      command('leader', word(topic, 'topic'), int(partition, 'partition'), int(broker, 'broker id')),
    pushErrors: async (apiKey, errors) =>
      command('push_errors', int(apiKey, 'apiKey'), int(errors.length, 'error count'), ...errors.map((e) => word(e, 'error'))),
    clearErrors: async (apiKey) => command('clear_errors', int(apiKey, 'apiKey')),
    setRtt: async (id, ms) => command('rtt', int(id, 'broker id'), int(ms, 'rtt ms')),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (proc.exitCode === null) {
        try {
          proc.stdin.write('quit\n');
          await proc.stdin.end();
        } catch {
          // already gone
        }
      }
      const exited = await Promise.race([proc.exited, Bun.sleep(STOP_TIMEOUT_MS).then(() => undefined)]);
      if (exited === undefined) {
        proc.kill('SIGKILL');
        await proc.exited;
      }
    },
  };
}
