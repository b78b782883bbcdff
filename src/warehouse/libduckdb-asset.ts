// Only imported by the compiled binary: makes `bun build --compile` embed DuckDB's shared library.
import libduckdb from '@duckdb/node-bindings-linux-x64/libduckdb.so' with { type: 'file' };

/** Path of the embedded libduckdb.so inside the binary's virtual file system. */
export default libduckdb as unknown as string;
