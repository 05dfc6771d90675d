/**
 * The S3 listener keeps idle client connections for 65 s and says so. With Node's 5 s default,
 * clients whose pools keep idle sockets without a timeout of their own (the AWS SDK's, urllib3's)
 * reuse a connection just as the gateway closes it and see "socket hang up" mid-request.
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3_KEEP_ALIVE_TIMEOUT_MS, startServer, type RunningServer } from '../../src/server.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
let server: RunningServer;

beforeAll(async () => {
  const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_PORT: '0', KEYGATE_ADMIN_PORT: '0', KEYGATE_ACCESS_LOG: 'off' });
  server = await startServer(config, { announce: () => {} });
});

afterAll(async () => {
  await server?.close();
  dirs.cleanup();
});

/** Sends one request on `socket` and resolves with the response head once the body arrived. */
function exchange(socket: net.Socket, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const [head, body] = received.split('\r\n\r\n', 2);
      const length = Number(/content-length: (\d+)/i.exec(head ?? '')?.[1] ?? NaN);
      if (body !== undefined && body.length >= length) {
        socket.off('data', onData);
        resolve(head!);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET /_health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

it("announces a 65 s keep-alive and still serves a connection that sat idle past Node's 5 s default", async () => {
  expect(S3_KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(60_000);
  const url = new URL(server.s3Url);
  const socket = net.connect(Number(url.port), url.hostname);
  let closedAt: number | null = null;
  socket.on('close', () => (closedAt = Date.now()));
  try {
    const first = await exchange(socket, url.host);
    expect(first).toMatch(/^HTTP\/1\.1 200/);
    expect(first.toLowerCase()).toContain('keep-alive: timeout=65');

    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(closedAt, 'the gateway closed the idle connection').toBeNull();
    const second = await exchange(socket, url.host);
    expect(second).toMatch(/^HTTP\/1\.1 200/);
  } finally {
    socket.destroy();
  }
}, 20_000);
