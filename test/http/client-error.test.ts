/**
 * answerClientError on a real node:http server: requests Node's own parser refuses get an S3 XML
 * error (not Node's bare "400 Bad Request"), and the connection is closed.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { answerClientError } from '../../src/http/respond.js';

let server: http.Server;
let port: number;
let handled = 0;

beforeAll(async () => {
  server = http.createServer({ requestTimeout: 1000, connectionsCheckingInterval: 100 }, (req, res) => {
    handled++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

beforeEach(() => {
  handled = 0;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Writes raw bytes and reads until the server closes the connection. */
function exchange(raw: string | Buffer, options: { keepOpen?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got: ${Buffer.concat(chunks).toString()}`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(raw);
    if (!options.keepOpen) return;
  });
}

function parse(response: string): { status: number; headers: string; error: Record<string, string> } {
  const [head, body = ''] = response.split('\r\n\r\n', 2);
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head!)?.[1]);
  const document = new XMLParser({ parseTagValue: false }).parse(body) as { Error?: Record<string, string> };
  return { status, headers: head!.toLowerCase(), error: document.Error ?? {} };
}

describe('answerClientError', () => {
  it.each([
    ['a garbage request line', 'InvalidRequest', 'HELLO WORLD\r\n\r\n'],
    ['a space in the path', 'InvalidRequest', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an unknown HTTP version', 'InvalidRequest', 'GET / HTTP/9.1\r\nHost: x\r\n\r\n'],
    [
      'Content-Length with Transfer-Encoding',
      'InvalidRequest',
      'PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a non-numeric Content-Length', 'InvalidArgument', 'PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    ['two different Content-Lengths', 'InvalidRequest', 'PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['a header without a colon', 'InvalidRequest', 'GET /b/k HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n'],
    ['a NUL in a header value', 'InvalidRequest', 'GET /b/k HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
    ['oversized headers', 'RequestHeaderSectionTooLarge', `GET /b/k HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
  ])('answers %s with an S3 XML 400 %s, before any handler runs, and closes', async (_name, code, raw) => {
    const response = parse(await exchange(raw));
    expect(response.status).toBe(400);
    expect(response.headers).toContain('content-type: application/xml');
    expect(response.headers).toContain('connection: close');
    expect(response.error.Code).toBe(code);
    expect(response.error.Message).toBeTruthy();
    expect(response.error.RequestId).toMatch(/^[0-9A-F]{16}$/);
    expect(handled).toBe(0);
  });

  it.each([
    ['broken chunked framing', 'IncompleteBody', 'PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n'],
    ['a non-chunked Transfer-Encoding', 'InvalidRequest', 'PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc'],
  ])('answers %s found while the handler reads the body with an S3 XML 400 %s', async (_name, code, raw) => {
    const response = parse(await exchange(raw));
    expect(response.status).toBe(400);
    expect(response.error.Code).toBe(code);
  });

  it('names the request path as the Resource when the request line was readable', async () => {
    const response = parse(await exchange('PUT /bucket/some-key HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n'));
    expect(response.error.Resource).toBe('/bucket/some-key');
  });

  it('answers a request whose body never arrives with RequestTimeout', async () => {
    const response = parse(await exchange('PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc', { keepOpen: true }));
    // The handler already saw the request; Node's request timeout then cuts it, answering in XML.
    expect(response.status).toBe(400);
    expect(response.error.Code).toBe('RequestTimeout');
  });

  it('lets the answer to a complete request finish when the bytes after it are garbage, then closes', async () => {
    const slow = http.createServer((req, res) => {
      req.resume();
      // Answer only after the parser has seen (and refused) the surplus byte.
      setTimeout(() => res.end('answer to the first request'), 100);
    });
    slow.on('clientError', answerClientError);
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const socket = net.connect((slow.address() as AddressInfo).port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write('PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n0123456789');
    await new Promise((resolve) => socket.on('close', resolve));
    await new Promise<void>((resolve) => slow.close(() => resolve()));
    const text = Buffer.concat(chunks).toString();
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('answer to the first request');
  });

  it('says nothing more on a connection whose response already started', async () => {
    const started = http.createServer({ requestTimeout: 500, connectionsCheckingInterval: 100 }, (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    started.on('clientError', answerClientError);
    await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', resolve));
    const socket = net.connect((started.address() as AddressInfo).port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write('PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
    await new Promise((resolve) => socket.on('close', resolve));
    await new Promise<void>((resolve) => started.close(() => resolve()));
    const text = Buffer.concat(chunks).toString();
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).not.toContain('<Error>');
  });
});
