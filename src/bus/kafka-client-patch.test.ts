import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, Writer } from '@platformatic/kafka';

// patches/@platformatic+kafka+2.12.1.patch: the client's Connection writes a large request from one reused
// buffer per connection instead of concatenating it into a fresh one. Every request must still arrive as it
// was built, also when the socket could not take a request at once (a reader that is slow to start).

test('the client patch is applied (npm install runs patch-package)', () => {
  const file = join(dirname(fileURLToPath(import.meta.resolve('@platformatic/kafka'))), 'network/connection.js');
  expect(readFileSync(file, 'utf8')).toContain('#writeRequest(request)');
});

test('large requests arrive byte for byte through the reused buffer', async () => {
  const REQUESTS = 8;
  const CHUNK = 256 << 10;
  const chunksOf = (i: number) => 4 + (i % 3) * 5; // 1-4.75 MB, so the buffer grows and is reused shorter
  const got: Buffer[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const server = net.createServer((s) => {
    s.pause(); // the first requests meet a full socket
    setTimeout(() => s.resume(), 300);
    s.on('data', (d: Buffer) => {
      got.push(d);
      const bytes = got.reduce((n, b) => n + b.length, 0);
      let expected = 0;
      for (let i = 0; i < REQUESTS; i++) expected += 4 + 2 + 2 + 4 + 2 + 4 + chunksOf(i) * CHUNK;
      if (bytes >= expected) done();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const connection = new Connection('test');
  try {
    await connection.connect('127.0.0.1', (server.address() as net.AddressInfo).port);
    for (let i = 0; i < REQUESTS; i++) {
      const sent = new Promise<void>((resolve, reject) =>
        connection.send(
          0,
          9,
          () => {
            const w = Writer.create();
            for (let c = 0; c < chunksOf(i); c++) w.append(Buffer.alloc(CHUNK, (i * 31 + c) & 0xff));
            w.context.noResponse = true;
            return w;
          },
          () => undefined,
          false,
          false,
          (e) => (e ? reject(e) : resolve()),
        ),
      );
      await sent;
      // Every other request waits until the socket took everything: the next one then reuses the buffer.
      if (i % 2 === 1) while (connection.socket.writableLength > 0) await Bun.sleep(5);
    }
    await Promise.race([all, Bun.sleep(60_000).then(() => Promise.reject(new Error('not every byte arrived')))]);
    const data = Buffer.concat(got);
    let at = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const size = data.readInt32BE(at);
      expect(size).toBe(2 + 2 + 4 + 2 + 4 + chunksOf(i) * CHUNK);
      expect(data.readInt16BE(at + 4)).toBe(0); // api key
      expect(data.readInt16BE(at + 6)).toBe(9); // version
      let p = at + 4 + 2 + 2 + 4 + 2 + 4; // size, key, version, correlation id, client id "test"
      for (let c = 0; c < chunksOf(i); c++, p += CHUNK) {
        const chunk = data.subarray(p, p + CHUNK);
        const want = (i * 31 + c) & 0xff;
        if (chunk[0] !== want || chunk[CHUNK - 1] !== want || chunk.some((b) => b !== want)) throw new Error(`request ${i} chunk ${c} is not what was sent`);
      }
      at += 4 + size;
    }
    expect(at).toBe(data.length);
  } finally {
    await connection.close();
    server.close();
  }
}, 90_000);
