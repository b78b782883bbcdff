/**
 * Kafka's Java client default partitioner (`Utils.murmur2` of the key bytes, `& 0x7fffffff`, modulo
 * the partition count), so every producer and consumer agrees where a key lives. 32-bit integer
 * arithmetic (Math.imul) instead of the client's BigInt port, and no Buffer for ASCII keys: it runs
 * once per event on the producer's thread.
 */
const M = 0x5bd1e995;
const SEED = 0x9747b28c;
const scratch = new Uint8Array(256);

/** Java's `Utils.murmur2(byte[])` as a signed 32-bit integer. */
export function murmur2(bytes: Uint8Array, length = bytes.length): number {
  let h = (SEED ^ length) | 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= bytes[blocks + 2]! << 16;
    if (rest >= 2) h ^= bytes[blocks + 1]! << 8;
    h ^= bytes[blocks]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h;
}

/** The partition of a key given as its UTF-8 bytes (the encoder writes keys as bytes). */
export function partitionOfBytes(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** The partition of a key (its UTF-8 bytes), exactly as Kafka's Java client computes it. */
export function partitionOf(key: string, partitions: number): number {
  let bytes: Uint8Array = scratch;
  let length = key.length;
  let ascii = length <= scratch.length;
  for (let i = 0; ascii && i < length; i++) {
    const c = key.charCodeAt(i);
    if (c > 0x7f) ascii = false;
    else scratch[i] = c;
  }
  if (!ascii) {
    bytes = Buffer.from(key);
    length = bytes.length;
  }
  return (murmur2(bytes, length) & 0x7fffffff) % partitions;
}
