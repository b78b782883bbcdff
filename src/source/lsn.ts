import { AppError } from '../errors.ts';

/** Parses PostgreSQL's textual LSN "16/B374D848" into a bigint. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new AppError('BAD_LSN', `"${text}" is not an LSN (expected e.g. 16/B374D848)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Formats a bigint LSN the way PostgreSQL prints it: "16/B374D848". */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
