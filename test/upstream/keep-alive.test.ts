/**
 * Upstream connections are reused across requests, HEAD included: undici closes a connection after
 * every HEAD unless told not to, which cost a TCP handshake per HeadObject.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamForwarder, type ForwardRequest } from '../../src/upstream/forward.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';
import { readAll, targetFor, upstreamBody } from './fixtures.js';

/** A TCP relay in front of the upstream that counts the connections opened through it. */
async function countingRelay(upstream: URL): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections += 1;
    const server = net.connect(Number(upstream.port), upstream.hostname);
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(server).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('upstream keep-alive', () => {
  let upstream: TestUpstream;
  let relay: Awaited<ReturnType<typeof countingRelay>>;
  const forwarder = new UpstreamForwarder();

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket('reuse');
    relay = await countingRelay(new URL(upstream.endpoint));
  });
  afterAll(async () => {
    await forwarder.close();
    await relay?.close();
    await upstream?.stop();
  });

  it('reuses connections for HEAD requests', async () => {
    const target = targetFor({ ...upstream, endpoint: relay.url }, 'reuse');
    const base: Omit<ForwardRequest, 'method' | 'objectKey'> = { target, query: [], headers: {}, body: null };
    const data = Buffer.from('kept alive');
    await readAll((await forwarder.forward({ ...base, method: 'PUT', objectKey: 'k', body: upstreamBody(data) })).body);
    for (let i = 0; i < 10; i++) {
      const head = await forwarder.forward({ ...base, method: 'HEAD', objectKey: 'k' });
      expect(head.status).toBe(200);
      await readAll(head.body);
    }
    expect((await readAll((await forwarder.forward({ ...base, method: 'GET', objectKey: 'k' })).body)).toString()).toBe('kept alive');
    // One connection, give or take one opened while the previous was being returned to the pool.
    expect(relay.connections()).toBeLessThanOrEqual(3);
  });
});
