// The idempotent producer's fault semantics against a simulated cluster that checks producer ids, epochs
// and sequences as Kafka's brokers do (librdkafka's mock checks them only for transactional producers):
// a lost answer, injected retriable errors, a broker down, a leader move, a broker that lost our producer
// state, out-of-order sequences, duplicate answers, a send given up on.
import { expect, test } from 'bun:test';
import { crc32c, Reader, readRecordsBatch } from '@platformatic/kafka';
import { BatchProducer } from './kafka-produce.ts';
import type { ProduceLink, ProduceResponse } from './kafka-produce-link.ts';
import { nextSequence, type RawMessage } from './kafka-record-batch.ts';

type Fault = 'fail' | 'lose' | 'down' | 'forget' | 'out-of-order';
type Partitions = Parameters<ProduceLink['produce']>[3];

const NOT_LEADER_OR_FOLLOWER = 6;
const NOT_ENOUGH_REPLICAS = 19;
const OUT_OF_ORDER_SEQUENCE_NUMBER = 45;
const DUPLICATE_SEQUENCE_NUMBER = 46;
const INVALID_PRODUCER_EPOCH = 47;
const UNKNOWN_PRODUCER_ID = 59;

/** A cluster of brokers 1 and 2 in memory: one log per partition, the producer state a Kafka broker keeps (the last 5 batches per producer id and partition). */
class SimCluster implements ProduceLink {
  readonly leadersOf = new Map<string, number[]>([
    ['t', [1, 2, 1, 2]],
    ['u', [2, 1]],
  ]);
  readonly logs = new Map<string, string[]>();
  private readonly states = new Map<string, { epoch: number; batches: { first: number; last: number; offset: bigint }[] }>();
  private nextPid = 1000n;
  /** Per produce request, in order: what goes wrong with it (undefined: nothing). */
  readonly faults: (Fault | undefined)[] = [];
  /** Answer DUPLICATE_SEQUENCE_NUMBER to a duplicate (librdkafka's mock, old brokers) instead of its first offset (Apache Kafka now). */
  duplicateCode = false;
  /** Batches received per "topic/partition". */
  readonly received = new Map<string, number>();
  readonly pids: bigint[] = [];

  async prepare(): Promise<void> {}

  async leaders(topics: string[]): Promise<Map<string, number[]>> {
    return new Map(topics.map((t) => [t, [...this.leadersOf.get(t)!]]));
  }

  async initProducerId(): Promise<{ producerId: bigint; producerEpoch: number }> {
    const producerId = this.nextPid++;
    this.pids.push(producerId);
    return { producerId, producerEpoch: 0 };
  }

  clearMetadata(): void {}

  async produce(leader: number, _acks: number, _timeout: number, topics: Partitions): Promise<ProduceResponse> {
    const fault = this.faults.shift();
    if (fault === 'down') throw new Error(`broker ${leader}: connection refused`);
    if (fault === 'forget') this.states.clear(); // e.g. the producer id expired on the broker
    const responses = topics.map(([topic, parts]) => ({
      name: topic,
      partitionResponses: parts.map((p) => {
        this.received.set(`${topic}/${p.partition}`, (this.received.get(`${topic}/${p.partition}`) ?? 0) + 1);
        if (fault === 'fail') return { index: p.partition, errorCode: NOT_ENOUGH_REPLICAS, baseOffset: -1n };
        if (fault === 'out-of-order') return { index: p.partition, errorCode: OUT_OF_ORDER_SEQUENCE_NUMBER, baseOffset: -1n };
        return { index: p.partition, ...this.append(leader, topic, p.partition, p.batch) };
      }),
    }));
    if (fault === 'lose') throw new Error(`broker ${leader}: connection closed before the answer`); // written, answer lost
    return { responses };
  }

  private append(leader: number, topic: string, partition: number, batch: Buffer): { errorCode: number; baseOffset: bigint } {
    const key = `${topic}/${partition}`;
    if (this.leadersOf.get(topic)![partition] !== leader) return { errorCode: NOT_LEADER_OR_FOLLOWER, baseOffset: -1n };
    const b = readRecordsBatch(Reader.from(batch));
    expect(b.crc).toBe(crc32c(batch.subarray(21)));
    const log = this.logs.get(key) ?? [];
    this.logs.set(key, log);
    if (b.producerId >= 0n) {
      const last = nextSequence(b.firstSequence, b.records.length - 1);
      const id = `${key}|${b.producerId}`;
      const state = this.states.get(id);
      if (state) {
        if (b.producerEpoch !== state.epoch) return { errorCode: INVALID_PRODUCER_EPOCH, baseOffset: -1n };
        const dup = state.batches.find((x) => x.first === b.firstSequence && x.last === last);
        if (dup) return this.duplicateCode ? { errorCode: DUPLICATE_SEQUENCE_NUMBER, baseOffset: -1n } : { errorCode: 0, baseOffset: dup.offset };
        if (b.firstSequence !== nextSequence(state.batches.at(-1)!.last, 1)) return { errorCode: OUT_OF_ORDER_SEQUENCE_NUMBER, baseOffset: -1n };
      } else if (b.firstSequence !== 0) return { errorCode: UNKNOWN_PRODUCER_ID, baseOffset: -1n };
      const s = state ?? { epoch: b.producerEpoch, batches: [] };
      this.states.set(id, s);
      s.batches.push({ first: b.firstSequence, last, offset: BigInt(log.length) });
      if (s.batches.length > 5) s.batches.shift();
    }
    const offset = BigInt(log.length);
    for (const r of b.records) log.push(Buffer.from(r.value ?? []).toString());
    return { errorCode: 0, baseOffset: offset };
  }

  /** Messages written more than once, and any partition whose log is not `expected` in order once duplicates are left out. */
  check(expected: Map<string, string[]>): { duplicates: number; misordered: string[] } {
    let duplicates = 0;
    const misordered: string[] = [];
    for (const [key, want] of expected) {
      const log = this.logs.get(key) ?? [];
      duplicates += log.length - new Set(log).size;
      if (JSON.stringify([...new Set(log)]) !== JSON.stringify(want)) misordered.push(key);
    }
    return { duplicates, misordered };
  }
}

/** Sends as KafkaWriter does: a failed send's batches again (resend) until acknowledged. */
async function publish(producer: BatchProducer, messages: RawMessage[]): Promise<void> {
  try {
    await producer.send(messages);
    return;
  } catch {}
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await producer.resend();
      return;
    } catch {}
  }
  throw new Error('not acknowledged after 50 attempts');
}

/** Sends of 1-6 messages per partition over the six partitions of `t` and `u`; `expected` collects what each log must hold. */
function sends(count: number, expected: Map<string, string[]>): RawMessage[][] {
  const out: RawMessage[][] = [];
  let n = 0;
  for (let s = 0; s < count; s++) {
    const messages: RawMessage[] = [];
    for (const [topic, partitions] of [['t', 4], ['u', 2]] as const) {
      for (let p = 0; p < partitions; p++) {
        for (let i = 0; i <= (s + p) % 6; i++) {
          const value = `${topic}/${p}/${n++}`;
          messages.push({ topic, partition: p, key: `k${n}`, value: Buffer.from(value) });
          const list = expected.get(`${topic}/${p}`) ?? [];
          list.push(value);
          expected.set(`${topic}/${p}`, list);
        }
      }
    }
    out.push(messages);
  }
  return out;
}

function run(idempotent: boolean, script: (cluster: SimCluster, s: number) => void, count = 40) {
  const cluster = new SimCluster();
  const producer = new BatchProducer(cluster, { acks: -1, timeout: 1000, compression: 'none', idempotent });
  const expected = new Map<string, string[]>();
  return {
    cluster,
    producer,
    async go() {
      const all = sends(count, expected);
      for (const [s, messages] of all.entries()) {
        script(cluster, s);
        await publish(producer, messages);
      }
      return cluster.check(expected);
    },
  };
}

/** Every kind of retriable trouble, a few sends apart: answers lost after the write, errors, a broker down, a leader move. */
function trouble(cluster: SimCluster, s: number): void {
  if (s % 5 === 1) cluster.faults.push('lose'); // the first leader's request of this send: written, answer lost
  if (s % 5 === 2) cluster.faults.push(undefined, 'lose', 'lose'); // the second leader's, and its retry's
  if (s % 5 === 3) cluster.faults.push('fail', 'down');
  if (s === 20) cluster.leadersOf.set('t', [2, 2, 1, 1]); // leaders moved: NOT_LEADER_OR_FOLLOWER, then the new ones
}

test('idempotent: lost answers, errors, a broker down and a leader move write every message once, in order', async () => {
  const r = run(true, trouble);
  expect(await r.go()).toEqual({ duplicates: 0, misordered: [] });
  expect(r.cluster.pids.length).toBe(1); // nothing needed a new producer id
  expect(r.producer.identity!.producerId).toBe(1000n);
  // Partition t/0's next sequence is the count of its messages.
  expect(r.producer.identity!.sequences.get('t/0')).toBe(r.cluster.logs.get('t/0')!.length);
});

test('without producer id and sequences the same faults write messages twice (what the simulated broker checks)', async () => {
  const r = run(false, trouble);
  const { duplicates } = await r.go();
  expect(duplicates).toBeGreaterThan(0);
});

test('acknowledged partitions of a failed send are not sent again', async () => {
  const r = run(true, (c, s) => {
    if (s === 3) c.faults.push('fail'); // one leader's request fails, the other's is acknowledged
  });
  const result = await r.go();
  expect(result).toEqual({ duplicates: 0, misordered: [] });
  // 40 sends reach every partition once each; send 3 failed at one leader only: its 3 partitions (of 6) got one batch more.
  const extra = [...r.cluster.received.values()].reduce((a, b) => a + b, 0) - 40 * 6;
  expect(extra).toBe(3);
});

test('a broker answering DUPLICATE_SEQUENCE_NUMBER to a resent batch: taken as written', async () => {
  const r = run(true, trouble);
  r.cluster.duplicateCode = true;
  expect(await r.go()).toEqual({ duplicates: 0, misordered: [] });
});

test('the brokers lost our producer state (UNKNOWN_PRODUCER_ID): a new producer id, sequences from 0, nothing lost', async () => {
  const r = run(true, (c, s) => {
    if (s === 7 || s === 30) c.faults.push('forget');
  });
  expect(await r.go()).toEqual({ duplicates: 0, misordered: [] });
  expect(r.cluster.pids).toEqual([1000n, 1001n, 1002n]);
});

test('OUT_OF_ORDER_SEQUENCE_NUMBER: a new producer id, the batch sent again from sequence 0', async () => {
  const r = run(true, (c, s) => {
    if (s === 11) c.faults.push('out-of-order');
  });
  expect(await r.go()).toEqual({ duplicates: 0, misordered: [] });
  expect(r.cluster.pids).toEqual([1000n, 1001n]);
  // The new producer's sequences restarted at 0: those of its partitions are below the log's length.
  const seqs = r.producer.identity!.sequences;
  expect([...seqs.values()].every((v) => v > 0)).toBe(true);
  expect(seqs.get('t/0')!).toBeLessThan(r.cluster.logs.get('t/0')!.length);
});

test('a send given up on (abandon) after a lost answer: the next send starts a new producer id', async () => {
  const cluster = new SimCluster();
  const producer = new BatchProducer(cluster, { acks: -1, timeout: 1000, compression: 'none', idempotent: true });
  const expected = new Map<string, string[]>();
  const [first, second] = sends(2, expected);
  cluster.faults.push('lose', 'lose');
  await expect(producer.send(first!)).rejects.toThrow(/not acknowledged/);
  expect(producer.pending).toBe(true);
  await expect(producer.send(second!)).rejects.toThrow(/resend/); // refused while a failed send waits
  producer.abandon();
  expect(producer.identity).toBeUndefined();
  await producer.send(second!);
  expect(cluster.pids).toEqual([1000n, 1001n]);
  // The first send was written, unacknowledged, and given up: its messages are on the topic once; the second's too.
  expect(cluster.check(expected)).toEqual({ duplicates: 0, misordered: [] });
});
