/**
 * A throwaway cluster of Debian's packaged PostgreSQL (e.g. 15 at /usr/lib/postgresql/15/bin), for
 * tests that must also pass on an older major version than the embedded one. Returns null when the
 * binaries are not installed. Runs as the postgres OS user when the tests run as root.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, LOGICAL_FLAGS } from '../../src/demo/postgres.ts';

export interface DebianPostgres {
  url: string;
  version: number;
  stop(): Promise<void>;
}

async function run(cmd: string[]): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const argv = asRoot ? ['runuser', '-u', 'postgres', '--', ...cmd] : cmd;
  const p = Bun.spawn(argv, { stdout: 'pipe', stderr: 'pipe' });
  const code = await p.exited;
  if (code !== 0) throw new Error(`${cmd.join(' ')} failed (${code}): ${await new Response(p.stderr).text()}`);
}

export async function startDebianPostgres(version: number): Promise<DebianPostgres | null> {
  const bin = `/usr/lib/postgresql/${version}/bin`;
  if (!existsSync(`${bin}/initdb`)) {
    // .ci/run installs it (scripts/ci-install.sh): there a missing one is a failure, not a skip.
    if (process.env.REQUIRE_DEBIAN_POSTGRES) throw new Error(`PostgreSQL ${version} is not installed at ${bin}: run scripts/ci-install.sh`);
    return null;
  }
  const root = mkdtempSync(join(tmpdir(), `ducktail-pg${version}-`));
  chmodSync(root, 0o777);
  const data = join(root, 'data');
  const port = await freePort();
  await run([`${bin}/initdb`, '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const opts = [...LOGICAL_FLAGS, '-c', `port=${port}`, '-c', 'fsync=off'].map((f) => (f === '-c' ? f : `'${f}'`)).join(' ');
  await run([`${bin}/pg_ctl`, '-D', data, '-w', '-l', join(root, 'log'), '-o', opts, 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    version,
    async stop() {
      await run([`${bin}/pg_ctl`, '-D', data, '-w', '-m', 'fast', 'stop']).catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}
