/**
 * The URL of a Worker module of this folder (`name` without extension), from source or from the
 * compiled binary. scripts/build.ts builds each Worker in as an entrypoint of its own, which the binary
 * holds at `$bunfs/root/bus/<name>.js` (its path under src/, the entrypoints' common folder, as .js),
 * while the code asking for it runs as the main entrypoint at `$bunfs/root/<outfile>`: a URL relative
 * to this module's source file (`./<name>.ts`) is not in the binary (scripts/smoke-binary.ts checks it).
 */
export function workerUrl(name: string): string {
  if (import.meta.url.includes('$bunfs')) return new URL(`./bus/${name}.js`, import.meta.url).href;
  return new URL(`./${name}.ts`, import.meta.url).href;
}
