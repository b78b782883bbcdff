import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startS3, type S3Server } from './s3.ts';

describe('s3rver', () => {
  let s3: S3Server;

  beforeAll(async () => {
    s3 = await startS3();
  });

  afterAll(async () => {
    await s3?.stop();
  });

  test('serves path-style on loopback with a created bucket', () => {
    expect(s3.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s3.bucket).toBe('ducktail-test');
  });

  test('write, read back, list, delete through Bun.S3Client', async () => {
    const { client } = s3;
    const prefix = `smoke-${Date.now()}/`;
    await client.write(`${prefix}a.txt`, 'hello');
    await client.write(`${prefix}b.bin`, new Uint8Array([0, 1, 2, 255]));

    expect(await client.file(`${prefix}a.txt`).text()).toBe('hello');
    expect(new Uint8Array(await client.file(`${prefix}b.bin`).arrayBuffer())).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(await client.size(`${prefix}a.txt`)).toBe(5);

    const listed = await client.list({ prefix });
    expect((listed.contents ?? []).map((o) => o.key).sort()).toEqual([`${prefix}a.txt`, `${prefix}b.bin`]);

    await client.delete(`${prefix}a.txt`);
    expect(await client.exists(`${prefix}a.txt`)).toBe(false);
    expect(await client.exists(`${prefix}b.bin`)).toBe(true);
    expect((await client.list({ prefix })).contents?.map((o) => o.key)).toEqual([`${prefix}b.bin`]);
  });

  test('multipart upload of a large object', async () => {
    const key = `smoke-${Date.now()}/large.bin`;
    const part = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
    const writer = s3.client.file(key).writer({ partSize: 5 * 1024 * 1024 });
    for (let i = 0; i < 3; i++) writer.write(part);
    await writer.end();
    expect(await s3.client.size(key)).toBe(3 * part.length);
    const back = new Uint8Array(await s3.client.file(key).slice(part.length, part.length + 10).arrayBuffer());
    expect(back).toEqual(part.slice(0, 10));
  });

  test('wrong credentials are refused', async () => {
    const other = new Bun.S3Client({
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      accessKeyId: 'nobody',
      secretAccessKey: 'wrong',
      virtualHostedStyle: false,
    });
    await expect(other.write('x.txt', 'x')).rejects.toThrow();
  });
});
