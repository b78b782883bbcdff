/**
 * S3 test service: s3rver (a filesystem-backed S3 API) in-process on 127.0.0.1,
 * one temporary data directory and one bucket per server. Requests must be
 * path-style (`virtualHostedStyle: false`) and signed with S3RVER/S3RVER.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** The only key pair s3rver accepts. */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';

/** Options of `startS3`. */
export interface S3Options {
  /** Bucket created before the server starts (default `ducktail-test`). */
  bucket?: string;
  /** Log every request to stdout (default: when S3_LOG=1). */
  log?: boolean;
  /** Port to listen on (default: a free one); to restart a stopped server at the same endpoint. */
  port?: number;
  /** Data directory to use and keep on `stop` (default: a fresh temp one, removed by `stop`): a restart keeps the objects. */
  directory?: string;
}

/** A running S3 server with one bucket, and a Bun.S3Client bound to that bucket. */
export interface S3Server {
  /** `http://127.0.0.1:<port>`, for `s3_endpoint` and Bun.S3Client's `endpoint`. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Path-style client for `bucket`. */
  readonly client: Bun.S3Client;
  /** Data directory on disk (removed by `stop`). */
  readonly directory: string;
  /** Stops the server and removes its data; idempotent. */
  stop(): Promise<void>;
}

/** Starts s3rver on a free loopback port with a fresh temp directory and `bucket` created. */
export async function startS3(options: S3Options = {}): Promise<S3Server> {
  const bucket = options.bucket ?? 'ducktail-test';
  const region = 'us-east-1';
  const keep = options.directory !== undefined;
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'ducktail-s3-')));
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0, // 0: the OS picks a free port; run() reports it
    directory,
    silent: !(options.log ?? process.env.S3_LOG === '1'),
    vhostBuckets: false,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  let port: number;
  try {
    ({ port } = await server.run());
  } catch (e) {
    if (!keep) await rm(directory, { recursive: true, force: true });
    throw e;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new Bun.S3Client({
    endpoint,
    bucket,
    region,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    virtualHostedStyle: false,
  });

  let stopped = false;
  return {
    endpoint,
    bucket,
    region,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    client,
    directory,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      if (!keep) await rm(directory, { recursive: true, force: true });
    },
  };
}
