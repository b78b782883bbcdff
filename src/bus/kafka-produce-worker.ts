/// <reference lib="webworker" />
// The producer's encode-and-send half in its own thread (see kafka-producer-thread.ts): one KafkaWriter
// (its own client connections, encoder, record batches and retries), fed packed batches by the main thread.
import type { TableSchema } from '../change/index.ts';
import { AppError, errorMessage } from '../errors.ts';
import { type PackedBatch, unpackBatch } from './kafka-batch-pack.ts';
import { KafkaWriter } from './kafka-producer.ts';
import type { KafkaBusOptions } from './kafka.ts';

declare const self: Worker;

export type ProduceRequest =
  | { type: 'open'; opts: KafkaBusOptions }
  /** Encode batch `id` now (ahead of its turn to be sent). */
  | { type: 'encode'; id: number; batch: PackedBatch }
  /** Send batch `id` (encoded before): answered once every replica acknowledged all of it, or it failed. */
  | { type: 'write'; id: number }
  | { type: 'raw'; id: number; topic: string; key: string | undefined; value: Uint8Array; headers: [string, string][] }
  | { type: 'abort' }
  | { type: 'close' };

export type ProduceState = { status: KafkaWriter['status']; ends: [string, bigint][] };
export type ProduceReply =
  | { ready: true }
  | { log: string }
  | ({ state: true } & ProduceState)
  | ({ id: number; error?: { code?: string; message: string } } & ProduceState)
  | { closed: true };

const stop = new AbortController();
let writer: KafkaWriter | undefined;
const tables = new Map<number, TableSchema>();
/** Batches encoded ahead, waiting for their `write`. */
const pending = new Map<number, { batch: ReturnType<typeof unpackBatch>; encoded: Promise<unknown> }>();

const state = (): ProduceState => ({ status: { ...writer!.status }, ends: [...writer!.ends] });
const post = (m: ProduceReply) => self.postMessage(m);
const failure = (e: unknown) => ({ code: e instanceof AppError ? e.code : undefined, message: errorMessage(e) });

self.onmessage = async (event: MessageEvent<ProduceRequest>) => {
  const m = event.data;
  switch (m.type) {
    case 'open':
      writer = new KafkaWriter(m.opts, (log) => post({ log }), () => post({ state: true, ...state() }));
      post({ ready: true });
      return;
    case 'encode': {
      const batch = unpackBatch(m.batch, tables);
      // A failure is met again, and retried, by write.
      pending.set(m.id, { batch, encoded: writer!.encodeAhead(batch).catch(() => undefined) });
      return;
    }
    case 'write': {
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      try {
        await writer!.write(p.batch, stop.signal, (await p.encoded) as never);
        post({ id: m.id, ...state() });
      } catch (e) {
        // The batches encoded after it are never sent: the bus fails them with this one (order).
        pending.clear();
        post({ id: m.id, error: failure(e), ...state() });
      }
      return;
    }
    case 'raw':
      try {
        await writer!.sendRaw(m.topic, m.key, Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength), new Map(m.headers), stop.signal);
        post({ id: m.id, ...state() });
      } catch (e) {
        post({ id: m.id, error: failure(e), ...state() });
      }
      return;
    case 'abort':
      stop.abort();
      return;
    case 'close':
      stop.abort();
      await writer?.close();
      post({ closed: true });
      return;
  }
};
