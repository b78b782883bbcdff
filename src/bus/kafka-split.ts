import { AppError } from '../errors.ts';

/**
 * Splitting a batch's messages into consecutive sends so that no partition's record batch of one send
 * exceeds `bus.max_batch_bytes`. Each partition's messages of a send become one Kafka record batch (the
 * client's `send` and BatchProducer alike), a broker refuses a record batch over its `message.max.bytes`
 * (MESSAGE_TOO_LARGE), and Produce v3+ carries one record batch per partition per request: the split has
 * to be across sends. Sizes are uncompressed (keys + values + per-record overhead), the safe measure.
 */

/** Most bytes a v2 record adds to its key and value: length, attributes, timestamp and offset deltas, key and value lengths, header count. */
export const RECORD_OVERHEAD = 21;
/** A v2 record batch's header (61 bytes), the log overhead included. */
export const BATCH_OVERHEAD = 61;

export interface Sized {
  topic: string;
  partition: number;
  key?: string | Uint8Array | undefined;
  value: Buffer;
}

/** A message's share of its record batch, uncompressed. */
export function messageBytes(m: Sized): number {
  const k = m.key;
  return (k === undefined ? 0 : typeof k === 'string' ? Buffer.byteLength(k) : k.length) + m.value.length + RECORD_OVERHEAD;
}

/**
 * Ends (exclusive indexes) of the consecutive sends of `messages[from..]`: a send ends before the message
 * that would take its partition's record batch over `maxBytes`. Order is kept (every send is a
 * contiguous range, sent after the one before is acknowledged). A message that alone exceeds the limit
 * cannot be split: KAFKA_MESSAGE_TOO_LARGE.
 */
export function sendPlan(messages: Sized[], maxBytes: number, from = 0): number[] {
  const ends: number[] = [];
  for (let at = from; at < messages.length; ) ends.push((at = nextEnd(messages, maxBytes, at)));
  return ends;
}

/** The end of the send that starts at `from` (see `sendPlan`). */
export function nextEnd(messages: Sized[], maxBytes: number, from: number): number {
  const used = new Map<string, Map<number, number>>();
  for (let i = from; i < messages.length; i++) {
    const m = messages[i]!;
    const size = messageBytes(m);
    if (BATCH_OVERHEAD + size > maxBytes) throw tooLarge(m, BATCH_OVERHEAD + size, maxBytes);
    let parts = used.get(m.topic);
    if (!parts) used.set(m.topic, (parts = new Map()));
    const before = parts.get(m.partition) ?? BATCH_OVERHEAD;
    if (before + size > maxBytes) return i;
    parts.set(m.partition, before + size);
  }
  return messages.length;
}

/** The table of a topic `<prefix>.<schema>.<table>` (the prefix may itself contain dots: the last two parts). */
function tableOf(topic: string): string {
  return topic.split('.').slice(-2).join('.');
}

function shortKey(k: string | Uint8Array | undefined): string {
  if (k === undefined) return '(none)';
  const key = typeof k === 'string' ? k : Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString();
  return key.length > 200 ? `${key.slice(0, 200)}…` : key;
}

/** "a change of <table> (topic, key)" for error messages. */
export function describeMessage(m: Sized): string {
  return `a change of ${tableOf(m.topic)} (topic ${m.topic}, key ${shortKey(m.key)})`;
}

/** A message that no send can carry: what to raise, on both sides. */
export function tooLarge(m: Sized, bytes: number, maxBytes: number): AppError {
  return new AppError(
    'KAFKA_MESSAGE_TOO_LARGE',
    `${describeMessage(m)} encodes to a ${bytes}-byte record batch, ` +
      `over bus.max_batch_bytes = ${maxBytes}; one message cannot be split across sends, so publishing stops here ` +
      `(nothing past it is confirmed to PostgreSQL): raise bus.max_batch_bytes above ${bytes} and the brokers' message.max.bytes ` +
      `(or the topic's max.message.bytes) with it, then restart ducktail`,
  );
}

/** Whether a send's error is the broker's MESSAGE_TOO_LARGE (10) or RECORD_LIST_TOO_LARGE (18), anywhere in its causes. */
export function brokerTooLarge(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  const walk = (x: unknown): string | undefined => {
    if (!x || typeof x !== 'object' || seen.has(x)) return undefined;
    seen.add(x);
    const o = x as { apiId?: unknown; apiCode?: unknown; errors?: unknown[]; cause?: unknown };
    if (o.apiId === 'MESSAGE_TOO_LARGE' || o.apiCode === 10) return 'MESSAGE_TOO_LARGE';
    if (o.apiId === 'RECORD_LIST_TOO_LARGE' || o.apiCode === 18) return 'RECORD_LIST_TOO_LARGE';
    for (const c of o.errors ?? []) {
      const r = walk(c);
      if (r) return r;
    }
    return walk(o.cause);
  };
  return walk(e);
}
