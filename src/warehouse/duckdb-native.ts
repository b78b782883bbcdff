import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../errors.ts';

type DuckDbModule = typeof import('@duckdb/node-api');

let loading: Promise<DuckDbModule> | null = null;

/** True inside a `bun build --compile` binary (its modules live in Bun's virtual /$bunfs). */
export function isCompiled(): boolean {
  return import.meta.path.startsWith('/$bunfs/') || import.meta.path.startsWith('B:\\~BUN');
}

/**
 * The one way to get @duckdb/node-api. From source it is a plain import. In the compiled binary,
 * the native binding needs libduckdb.so beside it, which a virtual file system cannot give: the
 * embedded library is written to a cache folder and loaded first, so the binding finds it by soname.
 */
export function loadDuckDb(): Promise<DuckDbModule> {
  loading ??= (async () => {
    if (isCompiled()) await preloadEmbeddedLibrary();
    return await import('@duckdb/node-api');
  })();
  return loading;
}

async function preloadEmbeddedLibrary(): Promise<void> {
  const { default: embedded } = await import('./libduckdb-asset.ts');
  const bytes = await Bun.file(embedded).arrayBuffer();
  const target = join(cacheRoot(), `libduckdb-${bytes.byteLength}-${Bun.hash(bytes).toString(16)}`, 'libduckdb.so');
  if (!existsSync(target) || statSync(target).size !== bytes.byteLength) {
    mkdirSync(join(target, '..'), { recursive: true });
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, new Uint8Array(bytes), { mode: 0o755 });
    renameSync(temp, target);
  }
  const { dlopen, FFIType } = await import('bun:ffi');
  try {
    dlopen(target, { duckdb_library_version: { args: [], returns: FFIType.cstring } });
  } catch (e) {
    throw new AppError('DUCKDB_LOAD_FAILED', `cannot load the embedded DuckDB library from ${target}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** $DUCKTAIL_HOME/cache, $XDG_CACHE_HOME/ducktail, ~/.cache/ducktail, or the temp folder. */
function cacheRoot(): string {
  if (process.env.DUCKTAIL_HOME) return join(process.env.DUCKTAIL_HOME, 'cache');
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'ducktail');
  const home = homedir();
  return home && home !== '/' ? join(home, '.cache', 'ducktail') : join(tmpdir(), 'ducktail-cache');
}

/** The native binding under @duckdb/node-api (data chunk vectors), loaded the same way. */
export async function loadBindings(): Promise<typeof import('@duckdb/node-bindings')> {
  await loadDuckDb();
  const m = (await import('@duckdb/node-bindings')) as typeof import('@duckdb/node-bindings') & { default?: typeof import('@duckdb/node-bindings') };
  return m.default ?? m;
}
