/**
 * Upstreams that close the connection after each answer (`Connection: close`, as moto does),
 * downloaded by clients that read slowly: undici 7 used to stop the whole process when the
 * upstream's FIN arrived while its parser was paused for backpressure on a body's last bytes
 * (src/upstream/response-framing.ts). Every download must arrive whole, the gateway must stay up,
 * and an answer whose body is delimited only by the connection closing is refused.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';

const BUCKET = 'close-bucket';
const OBJECT_BYTES = 8 * 1024 * 1024;
const OBJECT = Buffer.alloc(OBJECT_BYTES, 0x61);

/**
 * How the upstream frames its answer: Content-Length, chunked, or not at all (the body ends when the
 * connection closes) — plainly, or behind a Transfer-Encoding that does not end in chunked (one
 * header `chunked, identity`, or two headers), which undici's parser also reads up to the close.
 */
type Framing = 'length' | 'chunked' | 'none' | 'te-not-last' | 'te-twice';

/** An upstream answering every request with OBJECT in the framing its path names, then closing. */
async function startClosingUpstream(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (head: Buffer) => {
      const framing = (/^GET \/[^/]+\/(length|chunked|none|te-not-last|te-twice)/.exec(head.toString('latin1'))?.[1] ?? 'length') as Framing;
      const headers = ['HTTP/1.1 200 OK', 'Content-Type: application/octet-stream', 'ETag: "0123456789abcdef0123456789abcdef"', 'Connection: close'];
      if (framing === 'length') headers.push(`Content-Length: ${OBJECT_BYTES}`);
      if (framing === 'chunked') headers.push('Transfer-Encoding: chunked');
      if (framing === 'te-not-last') headers.push('Transfer-Encoding: chunked, identity');
      if (framing === 'te-twice') headers.push('Transfer-Encoding: chunked', 'Transfer-Encoding: identity');
      socket.write(`${headers.join('\r\n')}\r\n\r\n`);
      if (framing === 'chunked') {
        socket.write(`${OBJECT_BYTES.toString(16)}\r\n`);
        socket.write(OBJECT);
        socket.end('\r\n0\r\n\r\n');
      } else {
        socket.end(OBJECT);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The length of a chunked body's content; throws on broken framing or a missing last chunk. */
function dechunkedLength(body: Buffer): number {
  let offset = 0;
  let total = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', offset);
    if (lineEnd === -1) throw new Error('chunked body ends without its last chunk');
    const size = parseInt(body.toString('latin1', offset, lineEnd), 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size line');
    if (size === 0) return total;
    total += size;
    offset = lineEnd + 2 + size + 2;
  }
}

describe('upstreams that close the connection after answering', () => {
  let upstream: Awaited<ReturnType<typeof startClosingUpstream>>;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    upstream = await startClosingUpstream();
    gateway = await startGateway({
      KEYGATE_UPSTREAM_ENDPOINT: upstream.endpoint,
      KEYGATE_UPSTREAM_REGION: 'us-east-1',
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'UPSTREAMKEY',
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'upstream-secret',
      KEYGATE_ACCESS_LOG: 'off',
    });
    await gateway.addBucket({ name: BUCKET });
    key = await gateway.createKey({ name: 'closing', bucket: BUCKET, preset: 'read-only' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  /** A GET read a little at a time: the gateway's answer is held back by backpressure throughout. */
  function slowGet(path: string): Promise<{ head: string; bodyBytes: number }> {
    const url = new URL(gateway.url);
    const headers = signedHeaders(key, url.host, 'GET', path);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname);
      const chunks: Buffer[] = [];
      socket.on('connect', () => {
        const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
        socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`);
      });
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        socket.pause();
        setTimeout(() => socket.resume(), 3);
      });
      socket.on('end', () => {
        const all = Buffer.concat(chunks);
        const split = all.indexOf('\r\n\r\n');
        const head = all.subarray(0, split).toString('latin1');
        const body = all.subarray(split + 4);
        resolve({ head, bodyBytes: /transfer-encoding: chunked/i.test(head) ? dechunkedLength(body) : body.length });
      });
      socket.on('error', reject);
    });
  }

  function expectAlive(): void {
    expect(() => process.kill(gateway.pid, 0), gateway.output().slice(-2000)).not.toThrow();
  }

  for (const framing of ['length', 'chunked'] as const) {
    it(`streams whole ${framing === 'length' ? 'Content-Length' : 'chunked'} answers to slow readers and stays up (6 rounds of 8 at once)`, async () => {
      for (let round = 0; round < 6; round++) {
        const downloads = await Promise.all(Array.from({ length: 8 }, (_, index) => slowGet(`/${BUCKET}/${framing}-${round}-${index}.bin`)));
        for (const download of downloads) {
          expect(download.head).toMatch(/^HTTP\/1\.1 200 /);
          expect(download.bodyBytes).toBe(OBJECT_BYTES);
        }
        expectAlive();
      }
    });
  }

  for (const framing of ['none', 'te-not-last', 'te-twice'] as const) {
    it(`refuses an answer whose body only ends when the connection closes (${framing}: 502), and stays up (3 rounds of 8 at once)`, async () => {
      for (let round = 0; round < 3; round++) {
        const downloads = await Promise.all(Array.from({ length: 8 }, (_, index) => slowGet(`/${BUCKET}/${framing}-${round}-${index}.bin`)));
        for (const download of downloads) expect(download.head).toMatch(/^HTTP\/1\.1 502 /);
        expectAlive();
      }
      expect(gateway.output()).toContain('UNFRAMED_UPSTREAM_ANSWER');
    });
  }
});
