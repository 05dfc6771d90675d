/**
 * HTTP/1.1 over a bare socket, for tests that must control every byte a client sends (malformed
 * framing, bodies sent in slow pieces) and see exactly what came back before the connection closed.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RawRequest {
  method: string;
  /** The request target exactly as sent (`/path?query`). */
  target: string;
  headers: Array<[string, string]>;
  body?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ExchangeOptions {
  /** Give up (and fail) after this long without the connection closing. Default 10 s. */
  timeoutMs?: number;
  /** Send the body in pieces of this many bytes, pausing `pauseMs` between them (a slow client). */
  pieceBytes?: number;
  pauseMs?: number;
  /**
   * Resolve as soon as one complete response arrived instead of waiting for the connection to
   * close (for keep-alive requests).
   */
  untilResponse?: boolean;
}

export function serializeRequest(request: RawRequest): Buffer {
  let head = `${request.method} ${request.target} HTTP/1.1\r\n`;
  for (const [name, value] of request.headers) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), request.body ?? Buffer.alloc(0)]);
}

/**
 * Sends the request (or raw bytes) and resolves with the response once the server closed the
 * connection (or, with `untilResponse`, once a whole response arrived). The socket is never
 * half-closed: a half-closed connection makes Node abort the request before answering it.
 * Write errors (the server answered and closed before reading everything) are ignored: the test
 * judges what was received.
 */
export function exchange(port: number, request: RawRequest | Buffer, options: ExchangeOptions = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let head: Buffer;
  let body: Buffer;
  if (Buffer.isBuffer(request)) {
    head = request;
    body = Buffer.alloc(0);
  } else {
    head = serializeRequest({ ...request, body: undefined });
    body = request.body ?? Buffer.alloc(0);
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (outcome: () => RawResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      try {
        resolve(outcome());
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms (hang); got ${Buffer.concat(chunks).length} bytes`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.untilResponse && completeResponseLength(Buffer.concat(chunks)) !== null) finish(() => parseResponse(Buffer.concat(chunks)));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(() => parseResponse(Buffer.concat(chunks))));
    void (async () => {
      if (options.pieceBytes === undefined) {
        socket.write(Buffer.concat([head, body]));
        return;
      }
      socket.write(head);
      for (let at = 0; at < body.length && !socket.destroyed; at += options.pieceBytes) {
        await sleep(options.pauseMs ?? 10);
        if (!socket.destroyed) socket.write(body.subarray(at, at + options.pieceBytes));
      }
    })();
  });
}

/** Length of the first complete response in `raw` (Content-Length framed), or null while incomplete. */
function completeResponseLength(raw: Buffer): number | null {
  const split = raw.indexOf('\r\n\r\n');
  if (split === -1) return null;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(raw.subarray(0, split).toString('latin1'));
  const bodyLength = length ? Number(length[1]) : 0;
  return raw.length >= split + 4 + bodyLength ? split + 4 + bodyLength : null;
}

export function parseResponse(raw: Buffer): RawResponse {
  const split = raw.indexOf('\r\n\r\n');
  if (split === -1) throw new Error(`no HTTP response (connection closed after ${raw.length} bytes): ${raw.toString('latin1').slice(0, 200)}`);
  const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(split + 4);
  if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status, headers, body: body.toString('utf8') };
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    const size = Number.parseInt(body.subarray(at, lineEnd).toString(), 16);
    if (!(size > 0)) return Buffer.concat(out);
    out.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** The `<Code>` of an S3 error document, or null. */
export function errorCode(response: RawResponse): string | null {
  return /<Code>([^<]+)<\/Code>/.exec(response.body)?.[1] ?? null;
}

/** Everything the server sent on one connection until it closed it (several pipelined responses). */
export function receiveAll(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the connection was not closed within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes);
  });
}
