import {
  type API,
  type Broker,
  type ClusterMetadata,
  type Connection,
  createAPI,
  kGetApi,
  kGetBootstrapConnection,
  kGetConnection,
  type Producer,
  produceV9,
  produceV10,
  produceV11,
  ResponseError,
  Writer,
} from '@platformatic/kafka';
import { AppError } from '../errors.ts';

/** Where the producer's record batches go: one Produce request per leader on the client's connections. */

export type Partitions = { partition: number; batch: Buffer; count: number }[];
/** A Produce response as the client parses it (v9-v11): per partition its error code and first offset. */
export type ProduceResponse = { responses: { name: string; partitionResponses: { index: number; errorCode: number; baseOffset: bigint; errorMessage?: string | null }[] }[] };

/** Produce v9+ (flexible versions): null transactional id, acks, timeout, [topic [partition records]]. */
function createRequest(acks: number, timeout: number, topics: [string, Partitions][]): Writer {
  return Writer.create()
    .appendString(null)
    .appendInt16(acks)
    .appendInt32(timeout)
    .appendArray(topics, (w, [topic, partitions]) => {
      w.appendString(topic).appendArray(partitions, (w, { partition, batch }) => {
        w.appendInt32(partition).appendUnsignedVarInt(batch.length + 1).append(batch);
      });
    })
    .appendTaggedFields();
}

const PARSERS: Record<number, typeof produceV9.parseResponse> = { 9: produceV9.parseResponse, 10: produceV10.parseResponse, 11: produceV11.parseResponse };

/** Where batches go: cluster metadata, one Produce request to a leader, InitProducerId. The client's connections (`clientLink`), or a test's broker. */
export interface ProduceLink {
  /** Fails with KAFKA_PRODUCE_VERSION when the brokers' Produce version is not one written here. */
  prepare(): Promise<void>;
  /** Leader of every partition of `topics` (-1 or missing: none now). */
  leaders(topics: string[]): Promise<Map<string, number[]>>;
  /** One Produce request to `leader`; partition errors come back in the response (not thrown). */
  produce(leader: number, acks: number, timeout: number, topics: [string, Partitions][]): Promise<ProduceResponse>;
  /** A new producer id and epoch (InitProducerId, producer id -1 and epoch -1, no transactional id). */
  initProducerId(timeout: number): Promise<{ producerId: bigint; producerEpoch: number }>;
  /** After a failure: the next `leaders` asks the brokers again. */
  clearMetadata(): void;
}

/** The client's connections, API version negotiation and metadata. */
export function clientLink(producer: Producer<string | Uint8Array, Buffer, string, string>): ProduceLink {
  const apis = new Map<number, API<[number, number, [string, Partitions][]], ProduceResponse>>();
  let metadata: ClusterMetadata | undefined;
  const connection = (broker: Broker) =>
    new Promise<Connection>((resolve, reject) => producer[kGetConnection](broker, (e, c) => (e ? reject(e) : resolve(c!))));
  const negotiated = (name: string) =>
    new Promise<{ version: number; async: (...args: unknown[]) => Promise<unknown> }>((resolve, reject) =>
      producer[kGetApi](name, (e, a) => (e ? reject(e) : resolve(a as never))),
    );
  /** The Produce API at the version the client negotiated with the brokers (9-11: flexible requests). */
  const api = async () => {
    const version = (await negotiated('Produce')).version;
    let a = apis.get(version);
    if (!a) {
      const parse = PARSERS[version];
      if (!parse) throw new AppError('KAFKA_PRODUCE_VERSION', `the brokers' Produce API version ${version} is not one this producer writes (9-11)`);
      // Partition errors are read here, per partition (the client's parser throws them with the whole response).
      const tolerant = ((...args: Parameters<typeof parse>) => {
        try {
          return parse(...args);
        } catch (e) {
          if (e instanceof ResponseError && (e as unknown as { response?: ProduceResponse }).response?.responses) return (e as unknown as { response: ProduceResponse }).response;
          throw e;
        }
      }) as typeof parse;
      a = createAPI(0, version, createRequest, tolerant as never);
      apis.set(version, a);
    }
    return a;
  };
  return {
    async prepare() {
      await api();
    },
    async leaders(topics) {
      metadata = await producer.metadata({ topics });
      const out = new Map<string, number[]>();
      for (const topic of topics) {
        const t = metadata.topics.get(topic);
        if (!t) throw new AppError('KAFKA_TOPIC_MISSING', `no metadata for topic ${topic}`);
        out.set(topic, t.partitions.map((p) => p.leader));
      }
      return out;
    },
    async produce(leader, acks, timeout, topics) {
      const broker = metadata?.brokers.get(leader);
      if (!broker) throw new AppError('KAFKA_NO_LEADER', `broker ${leader} is not in the cluster metadata`);
      const c = await connection(broker);
      return (await api()).async(c, acks, timeout, topics);
    },
    async initProducerId(timeout) {
      const init = await negotiated('InitProducerId');
      const c = await new Promise<Connection>((resolve, reject) => producer[kGetBootstrapConnection]((e, c) => (e ? reject(e) : resolve(c!))));
      // -1 / -1 asks for a new producer id, as Kafka's Java client does (0 / 0 names producer 0 to bump: librdkafka's mock answers UNKNOWN_PRODUCER_ID).
      return (await init.async(c, null, timeout, -1n, -1)) as { producerId: bigint; producerEpoch: number };
    },
    clearMetadata() {
      metadata = undefined;
      producer.clearMetadata();
    },
  };
}

