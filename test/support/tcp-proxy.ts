import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay between ducktail and PostgreSQL that can cut the network the two ways it fails:
 * `reset()` ends every connection at once and refuses new ones (a peer or a firewall resetting),
 * `blackhole()` keeps connections open but moves no byte either way and lets new ones connect to
 * nothing (a partition: no FIN, no RST). `heal()` restores the network; bytes held by a blackhole
 * then flow on, as after a real partition, to whichever side is still there.
 */
export interface TcpProxy {
  port: number;
  /** host:port of the relay, for a postgres:// URL. */
  url(targetUrl: string): string;
  reset(): void;
  blackhole(): void;
  heal(): void;
  /** Connections relayed since the start. */
  readonly accepted: number;
  close(): Promise<void>;
}

type Mode = 'open' | 'reset' | 'blackhole';

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: Mode = 'open';
  let accepted = 0;
  const pairs = new Set<[Socket, Socket]>();

  const server: Server = createServer((client) => {
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = createConnection(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    if (mode === 'blackhole') {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    url(targetUrl: string) {
      const u = new URL(targetUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    reset() {
      mode = 'reset';
      for (const [client, upstream] of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    blackhole() {
      mode = 'blackhole';
      for (const [client, upstream] of pairs) {
        // Stop reading both sides: what either sends stays in the kernel's buffers, as on a dead link.
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    heal() {
      const was = mode;
      mode = 'open';
      if (was !== 'blackhole') return;
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        upstream.resume();
      }
    },
    get accepted() {
      return accepted;
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
