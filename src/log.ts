/** Log levels in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Structured values attached to a log event. */
export type LogFields = Record<string, unknown>;

/** `text`: `time level component: message key=value` (the default); `json`: one object per line. */
export type LogFormat = 'text' | 'json';

/** A minimal structured logger: one line per event on stderr. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(stage: string): Logger;
}

const jsonSafe = (_: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v);

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v, jsonSafe);
  return /[\s"=]/.test(s ?? '') ? JSON.stringify(s) : String(s);
}

/** Formats one event as a line (with its newline). */
export function formatLine(format: LogFormat, time: Date, level: LogLevel, component: string, message: string, fields?: LogFields): string {
  if (format === 'json') {
    return `${JSON.stringify({ time: time.toISOString(), level, component, message, ...(fields && Object.keys(fields).length > 0 ? { fields } : {}) }, jsonSafe)}\n`;
  }
  const extra = fields ? Object.entries(fields).map(([k, v]) => ` ${k}=${textValue(v)}`).join('') : '';
  return `${time.toISOString()} ${level.padEnd(5)} ${component}: ${message}${extra}\n`;
}

/** Creates a logger that drops messages below `level`. */
export function createLogger(
  level: LogLevel = 'info',
  stage = 'ducktail',
  write: (line: string) => unknown = (line) => process.stderr.write(line),
  format: LogFormat = 'text',
): Logger {
  const at = (l: LogLevel) => (msg: string, fields?: LogFields) => {
    if (ORDER[l] >= ORDER[level]) write(formatLine(format, new Date(), l, stage, msg, fields));
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (s) => createLogger(level, s, write, format),
  };
}
