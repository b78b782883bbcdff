/// <reference lib="webworker" />
// The consumer's fetch-and-decode half in its own thread (see kafka-fetch.ts): one Consumer client,
// one request at a time from KafkaReader, answered with packed columns whose buffers are transferred.
import { Consumer } from '@platformatic/kafka';
import { describe } from './kafka-producer.ts';
import { fillAndPack, type FetchPlan, LayoutIds, transferables } from './kafka-fetch.ts';
import { useOwnRecordReader } from './kafka-fetch-parse.ts';

declare const self: Worker;

export type WorkerRequest =
  | { type: 'open'; brokers: string[]; groupId: string; clientId: string }
  | { type: 'fetch'; id: number; plan: FetchPlan }
  | { type: 'close' };

let consumer: Consumer | undefined;
const ids = new LayoutIds();

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const m = event.data;
  if (m.type === 'open') {
    consumer = new Consumer({
      bootstrapBrokers: m.brokers, retries: 1, retryDelay: 100, timeout: 5_000, connectTimeout: 2_000,
      groupId: m.groupId, // required by the constructor; no group request is ever sent
      clientId: m.clientId,
    });
    useOwnRecordReader(consumer);
    self.postMessage({ ready: true });
  } else if (m.type === 'fetch') {
    try {
      const result = await fillAndPack(consumer!, m.plan, ids);
      self.postMessage({ id: m.id, result }, transferables(result));
    } catch (e) {
      self.postMessage({ id: m.id, error: describe(e) });
    }
  } else {
    await consumer?.close(true).catch(() => {});
    self.postMessage({ closed: true });
  }
};
