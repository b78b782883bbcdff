import type { DuckDBConnection, DuckDBInstance, DuckDBResult } from '@duckdb/node-api';
import { AppError } from '../errors.ts';
import { loadDuckDb } from './duckdb-native.ts';

/** A failed API query: `QUERY_NOT_READ_ONLY`, `QUERY_INVALID` or `QUERY_TIMEOUT`. */
export class QueryError extends AppError {}

/** One result column. */
export interface QueryColumn {
  name: string;
  type: string;
}

/** A materialized result, as POST /v1/query returns it. */
export interface QueryResult {
  columns: QueryColumn[];
  rows: unknown[][];
  rowCount: number;
  elapsedMs: number;
  /** True when the result had more than maxRows rows and was cut. */
  truncated: boolean;
}

/** Options of the query engine. */
export interface QueryEngineOptions {
  instance: DuckDBInstance;
  timeoutMs?: number;
  maxRows?: number;
  /** Runs before each query, e.g. to bring the cold files it may read into the local cache; its result is called when the query is done. */
  prepare?: (sql: string) => Promise<void | (() => void)>;
}

/** Read-only SQL over the warehouse for untrusted callers (the HTTP API). */
export interface QueryEngine {
  query(sql: string, params?: unknown[], signal?: AbortSignal): Promise<QueryResult>;
  /** Streams a result: first the columns, then rows in chunks. */
  stream(sql: string, params?: unknown[], signal?: AbortSignal): AsyncGenerator<QueryColumn[] | unknown[][]>;
}

/**
 * Locks the whole DuckDB instance down for untrusted SQL: no file or network access outside the
 * allowed folders (the pipeline's own), no ATTACH/INSTALL/LOAD, no later global SET. The pipeline's
 * writes to the database file itself are not external access and keep working.
 */
export async function lockDownInstance(instance: DuckDBInstance, opts: { allowedDirectories: string[] }): Promise<void> {
  const conn = await instance.connect();
  try {
    const dirs = opts.allowedDirectories.map((d) => `'${d.replaceAll("'", "''")}'`).join(', ');
    await conn.run(`SET allowed_directories = [${dirs}]`);
    await conn.run('SET enable_external_access = false');
    await conn.run('SET lock_configuration = true');
  } finally {
    conn.closeSync();
  }
}

const INTEGER_TYPES = new Set(['BIGINT', 'UBIGINT', 'HUGEINT', 'UHUGEINT']);

/** Makes a JSON-safe value: 64-bit integers become numbers when exactly representable. */
function jsonCell(value: unknown, integer: boolean): unknown {
  if (integer && typeof value === 'string') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  return value;
}

/** Creates the engine; every query gets its own connection with the warehouse's search path. */
export function createQueryEngine(opts: QueryEngineOptions): QueryEngine {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxRows = opts.maxRows ?? 100_000;

  async function open(sql: string, params: unknown[], signal?: AbortSignal) {
    const duck = await loadDuckDb();
    const conn = await opts.instance.connect();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const onAbort = () => conn.interrupt();
    let release: void | (() => void);
    const close = () => {
      release?.();
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      conn.closeSync();
    };
    try {
      release = await opts.prepare?.(sql);
      await conn.run("SET search_path = 'public,main'");
      const extracted = await conn.extractStatements(sql).catch((e) => {
        throw new QueryError('QUERY_INVALID', (e as Error).message);
      });
      if (extracted.count !== 1) {
        throw new QueryError('QUERY_NOT_READ_ONLY', `only a single SELECT statement is allowed; got ${extracted.count} statements`);
      }
      const stmt = await extracted.prepare(0).catch((e) => {
        throw new QueryError('QUERY_INVALID', (e as Error).message);
      });
      if (stmt.statementType !== duck.StatementType.SELECT) {
        const kind = duck.StatementType[stmt.statementType] ?? String(stmt.statementType);
        throw new QueryError('QUERY_NOT_READ_ONLY', `only a single SELECT statement is allowed; got ${kind}`);
      }
      if (params.length !== stmt.parameterCount) {
        throw new QueryError('QUERY_INVALID', `the query has ${stmt.parameterCount} parameters ($1...) but ${params.length} were given`);
      }
      params.forEach((p, i) => bindParam(stmt, i + 1, p));
      timer = setTimeout(() => {
        timedOut = true;
        conn.interrupt();
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const result = await stmt.stream().catch((e) => {
        throw timedOut
          ? new QueryError('QUERY_TIMEOUT', `the query ran longer than ${timeoutMs} ms and was cancelled`)
          : new QueryError('QUERY_INVALID', (e as Error).message);
      });
      return { result, close, timedOut: () => timedOut };
    } catch (e) {
      close();
      throw e;
    }
  }

  async function* rowsOf(result: DuckDBResult, timedOut: () => boolean) {
    const integer = Array.from({ length: result.columnCount }, (_, i) => INTEGER_TYPES.has(result.columnType(i).toString()));
    try {
      for await (const rows of result.yieldRowsJson()) {
        yield rows.map((r) => r.map((v, i) => jsonCell(v, integer[i]!)));
      }
    } catch (e) {
      if (timedOut()) throw new QueryError('QUERY_TIMEOUT', `the query ran longer than ${timeoutMs} ms and was cancelled`);
      throw new QueryError('QUERY_INVALID', (e as Error).message);
    }
  }

  function columnsOf(result: DuckDBResult): QueryColumn[] {
    return Array.from({ length: result.columnCount }, (_, i) => ({
      name: result.columnName(i),
      type: result.columnType(i).toString(),
    }));
  }

  return {
    async query(sql, params = [], signal) {
      const started = performance.now();
      const { result, close, timedOut } = await open(sql, params, signal);
      try {
        const rows: unknown[][] = [];
        let truncated = false;
        for await (const chunk of rowsOf(result, timedOut)) {
          for (const row of chunk) {
            if (rows.length >= maxRows) {
              truncated = true;
              break;
            }
            rows.push(row);
          }
          if (truncated) break;
        }
        return { columns: columnsOf(result), rows, rowCount: rows.length, elapsedMs: Math.round((performance.now() - started) * 100) / 100, truncated };
      } finally {
        close();
      }
    },
    async *stream(sql, params = [], signal) {
      const { result, close, timedOut } = await open(sql, params, signal);
      try {
        yield columnsOf(result);
        for await (const chunk of rowsOf(result, timedOut)) yield chunk;
      } finally {
        close();
      }
    },
  };
}

type Bindable = {
  bindNull(i: number): void;
  bindBoolean(i: number, v: boolean): void;
  bindBigInt(i: number, v: bigint): void;
  bindDouble(i: number, v: number): void;
  bindVarchar(i: number, v: string): void;
};

function bindParam(stmt: Bindable, index: number, value: unknown): void {
  if (value === null || value === undefined) stmt.bindNull(index);
  else if (typeof value === 'boolean') stmt.bindBoolean(index, value);
  else if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) stmt.bindBigInt(index, BigInt(value));
    else stmt.bindDouble(index, value);
  } else if (typeof value === 'string') stmt.bindVarchar(index, value);
  else throw new QueryError('QUERY_INVALID', `parameter $${index} must be a string, number, boolean or null`);
}
