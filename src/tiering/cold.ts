import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TieringError } from './warm.ts';

/** S3 connection settings (from [tiering]). */
export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The cold tier: a local folder (file://) or an S3 bucket and prefix (s3://). */
export interface ColdStore {
  readonly url: string;
  /** A local folder DuckDB may read cold files from directly, or null (S3: read through the cache). */
  readonly localRoot: string | null;
  /** Location (file:///... or s3://bucket/key) of a relative path. */
  locationOf(relative: string): string;
  /** Copies a local file to `location`. */
  put(localPath: string, location: string): Promise<void>;
  /** Copies `location` to a local file (atomically: written beside, then renamed). */
  get(location: string, localPath: string): Promise<void>;
  size(location: string): Promise<number>;
  delete(location: string): Promise<void>;
  /** Every location under the store with its age in ms (for the orphan sweep). */
  list(): Promise<{ location: string; ageMs: number }[]>;
}

/** A local folder DuckDB reads directly (file://dir, relative paths from the working directory). */
function folderStore(url: string): ColdStore {
  const raw = url.slice('file://'.length);
  const root = resolve(raw.startsWith('/') ? fileURLToPath(`file://${raw}`) : raw);
  const pathOf = (location: string) => location.slice('file://'.length);
  return {
    url,
    localRoot: root,
    locationOf: (relative) => `file://${join(root, relative)}`,
    async put(localPath, location) {
      const dest = pathOf(location);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(localPath, `${dest}.tmp`);
      renameSync(`${dest}.tmp`, dest);
    },
    async get(location, localPath) {
      mkdirSync(dirname(localPath), { recursive: true });
      copyFileSync(pathOf(location), localPath);
    },
    size: async (location) => statSync(pathOf(location)).size,
    delete: async (location) => rmSync(pathOf(location), { force: true }),
    async list() {
      if (!existsSync(root)) return [];
      const now = Date.now();
      return (readdirSync(root, { recursive: true }) as string[])
        .map((p) => join(root, p))
        .filter((p) => statSync(p).isFile())
        .map((p) => ({ location: `file://${p}`, ageMs: now - statSync(p).mtimeMs }));
    },
  };
}

/** An S3 client error's message with its code (Bun says "an unexpected error has occurred" for a refused connection). */
function describe(e: unknown): string {
  const { message, code } = e as { message?: string; code?: string };
  return code && !message?.includes(code) ? `${message} (${code})` : String(message);
}

/** An S3 bucket through Bun.S3Client (path-style when an endpoint is given). */
function s3Store(url: string, s3: S3Settings): ColdStore {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  const client = new Bun.S3Client({
    bucket,
    region: s3.region,
    ...(s3.endpoint ? { endpoint: s3.endpoint, virtualHostedStyle: false } : {}),
    ...(s3.accessKeyId ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } : {}),
  });
  const keyOf = (location: string) => location.slice(`s3://${bucket}/`.length);
  const unreachable = (what: string, location: string, e: unknown) =>
    new TieringError(
      'COLD_UNREACHABLE',
      `${what} ${location} failed: ${describe(e)}. Check tiering.cold_url, s3_endpoint and the credentials; ` +
        'the files stay in the warm tier and the next pass retries',
      { cause: e },
    );
  return {
    url,
    localRoot: null,
    locationOf: (relative) => `s3://${bucket}/${prefix ? `${prefix}/` : ''}${relative.split(sep).join('/')}`,
    async put(localPath, location) {
      try {
        await client.write(keyOf(location), Bun.file(localPath));
      } catch (e) {
        throw unreachable('uploading to', location, e);
      }
    },
    async get(location, localPath) {
      mkdirSync(dirname(localPath), { recursive: true });
      try {
        await Bun.write(`${localPath}.part`, client.file(keyOf(location)));
      } catch (e) {
        rmSync(`${localPath}.part`, { force: true });
        throw unreachable('downloading', location, e);
      }
      renameSync(`${localPath}.part`, localPath);
    },
    async size(location) {
      // Right after an upload some stores (s3rver finishing a multipart upload, eventually consistent
      // S3-compatibles) briefly answer "no such key": ask again a few times before calling it a failure.
      for (let attempt = 0; ; attempt++) {
        try {
          return await client.size(keyOf(location));
        } catch (e) {
          const missing = /does not exist|NoSuchKey|not found/i.test((e as Error).message ?? '');
          if (!missing || attempt >= 5) throw unreachable('checking', location, e);
          await Bun.sleep(100 * 2 ** attempt);
        }
      }
    },
    async delete(location) {
      try {
        await client.delete(keyOf(location));
      } catch (e) {
        throw unreachable('deleting', location, e);
      }
    },
    async list() {
      const out: { location: string; ageMs: number }[] = [];
      let token: string | undefined;
      const now = Date.now();
      do {
        const page = await client
          .list({ prefix: prefix ? `${prefix}/` : '', ...(token ? { startAfter: token } : {}) })
          .catch((e: unknown) => {
            throw unreachable('listing', url, e);
          });
        for (const o of page.contents ?? []) {
          const modified = o.lastModified ? new Date(o.lastModified).getTime() : now;
          out.push({ location: `s3://${bucket}/${o.key}`, ageMs: now - modified });
          token = o.key;
        }
        if (!page.isTruncated) token = undefined;
      } while (token);
      return out;
    },
  };
}

/** The cold store of `cold_url`. */
export function createColdStore(url: string, s3: S3Settings): ColdStore {
  return url.startsWith('s3://') ? s3Store(url, s3) : folderStore(url);
}
