/**
 * Kafka's Java client default partitioner (`Utils.murmur2` of the key bytes, `& 0x7fffffff`, modulo
 * the partition count), so every producer and consumer agrees where a key lives. 32-bit integer
 * arithmetic (Math.imul) instead of the client's BigInt port: it runs once per event on the producer's
 * thread, over the key bytes the encoder wrote.
 */
const M = 0x5bd1e995;
const SEED = 0x9747b28c;

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

/** The partition of a key given as text (its UTF-8 bytes). */
export function partitionOf(key: string, partitions: number): number {
  return partitionOfBytes(Buffer.from(key), partitions);
}
