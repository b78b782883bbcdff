import { type TupleValue, UNCHANGED } from '../change/index.ts';

const TAB = 9;
const NL = 10;
const CR = 13;
const QUOTE = 34;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A binary-format value as PostgreSQL's bytea hex text. */
export function byteaHex(v: Uint8Array): string {
  let s = '\\x';
  for (const b of v) s += HEX[b];
  return s;
}

/**
 * Builds the staging CSV (tab-separated, `\N` = NULL, `"` quotes) straight into one reusable byte
 * buffer: no string per line, no join. Text is written as UTF-8 and quoted only when it holds a tab,
 * a line break or a quote, or could be read as NULL ('' and '\N').
 */
export class CsvBuffer {
  private buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  /** The last two bigints written and their text: a transaction's rows share their LSN and commit time. */
  private big: (bigint | null)[] = [null, null];
  private bigText = ['', ''];

  reset(): void {
    this.pos = 0;
  }

  /** The bytes written since the last reset (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** ASCII text known to need no quoting (numbers, flags, op letters). */
  ascii(s: string): void {
    this.ensure(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }

  bigint(v: bigint): void {
    let i = v === this.big[0] ? 0 : v === this.big[1] ? 1 : -1;
    if (i < 0) {
      // Replace the older entry.
      i = this.bigNext;
      this.bigNext ^= 1;
      this.big[i] = v;
      this.bigText[i] = v.toString();
    }
    this.ascii(this.bigText[i]!);
  }
  private bigNext = 0;

  tab(): void {
    this.ensure(1);
    this.buf[this.pos++] = TAB;
  }

  newline(): void {
    this.ensure(1);
    this.buf[this.pos++] = NL;
  }

  /** One value: NULL as \N, text as is or quoted, binary as bytea hex text. */
  field(v: TupleValue | undefined): void {
    if (v === null || v === undefined) return this.ascii('\\N');
    if (typeof v === 'string') return this.text(v);
    if (v === UNCHANGED) throw new Error('internal: unchanged TOAST value reached staging unfilled');
    // A binary-format value (not requested by ducktail, but valid protocol): stage as bytea hex text.
    this.ascii(byteaHex(v));
  }

  private text(v: string): void {
    if (v === '' || v === '\\N') return this.ascii(`"${v}"`);
    this.ensure(v.length * 3);
    const start = this.pos;
    const end = start + this.buf.write(v, start, 'utf8');
    // In UTF-8 these bytes only ever encode the ASCII characters themselves.
    for (let i = start; i < end; i++) {
      const b = this.buf[i]!;
      if (b === TAB || b === NL || b === CR || b === QUOTE) {
        const quoted = `"${v.replaceAll('"', '""')}"`;
        this.ensure(quoted.length * 3);
        this.pos = start + this.buf.write(quoted, start, 'utf8');
        return;
      }
    }
    this.pos = end;
  }
}
