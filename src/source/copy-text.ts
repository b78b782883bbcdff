/**
 * Parser of COPY ... TO STDOUT in text format: rows end with \n, columns are separated by \t,
 * \N is NULL, and backslash escapes (\b \f \n \r \t \v \\, \digits octal, \xhex) stand for bytes.
 * https://www.postgresql.org/docs/current/sql-copy.html#SQL-COPY-FILE-FORMATS
 * Values are the columns' text output, the same as pgoutput sends in the stream.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });
const SIMPLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** Decodes one field's escapes; bytes given as octal or hex escapes are decoded as UTF-8. */
export function unescapeCopyField(field: string): string {
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e.length === 1 && SIMPLE_ESCAPES[e] !== undefined) return SIMPLE_ESCAPES[e];
    if (e[0] === 'x') return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return e;
  });
}

function parseLine(line: string, columns: number): (string | null)[] {
  const fields = line.split('\t');
  if (fields.length !== columns) {
    throw new Error(`COPY row has ${fields.length} columns, expected ${columns}: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const row: (string | null)[] = new Array(columns);
  for (let i = 0; i < columns; i++) {
    const f = fields[i]!;
    row[i] = f === '\\N' ? null : f.includes('\\') ? unescapeCopyField(f) : f;
  }
  return row;
}

/** Incremental parser: feed CopyData chunks, get complete rows (a row may span chunks). */
export class CopyTextParser {
  private rest: Uint8Array = new Uint8Array(0);

  constructor(private readonly columns: number) {}

  /** Rows completed by this chunk. */
  push(chunk: Uint8Array): (string | null)[][] {
    let buf = chunk;
    if (this.rest.length > 0) {
      buf = new Uint8Array(this.rest.length + chunk.length);
      buf.set(this.rest);
      buf.set(chunk, this.rest.length);
    }
    const end = buf.lastIndexOf(0x0a); // '\n'
    if (end < 0) {
      this.rest = buf.slice();
      return [];
    }
    this.rest = buf.slice(end + 1);
    const text = utf8.decode(buf.subarray(0, end));
    return text.split('\n').map((line) => parseLine(line, this.columns));
  }

  /** Throws when the stream ended inside a row. */
  end(): void {
    if (this.rest.length > 0) throw new Error('COPY data ended inside a row');
  }
}
