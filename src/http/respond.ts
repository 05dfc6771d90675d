/**
 * Writing S3 responses straight to Node's ServerResponse. The S3 listener bypasses web Response
 * objects so bodies stream through Node pipelines with backpressure and no extra copies.
 */
import { randomBytes } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { S3Error, isS3Error } from '../errors.js';
import { logToStderr } from '../observability/log.js';
import type { Reply } from '../s3/reply.js';

/** Random bytes drawn in bulk: one randomBytes call per 512 request ids instead of one per request. */
let idEntropy = Buffer.alloc(0);
let idOffset = 0;

export function newRequestId(): string {
  if (idOffset + 8 > idEntropy.length) {
    idEntropy = randomBytes(4096);
    idOffset = 0;
  }
  idOffset += 8;
  return idEntropy.toString('hex', idOffset - 8, idOffset).toUpperCase();
}

export function sendXml(res: ServerResponse, status: number, xml: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(xml);
  res.writeHead(status, { ...headers, 'content-type': 'application/xml', 'content-length': body.length });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Writes a handler's Reply. Upstream answers stream through with backpressure; their headers were
 * filtered by an allowlist (src/upstream/response-headers.ts), so the gateway's CORS headers, set
 * before per bucket rules, are the only ones.
 */
export async function writeReply(res: ServerResponse, reply: Reply): Promise<void> {
  switch (reply.kind) {
    case 'xml':
      sendXml(res, reply.status, reply.xml, reply.headers);
      return;
    case 'empty':
      res.writeHead(reply.status, reply.headers);
      res.end();
      return;
    case 'stream':
      res.writeHead(reply.status, reply.headers);
      if (res.req.method === 'HEAD') {
        // The answer is complete without the (empty) body: a late failure of it concerns nobody.
        reply.body.on('error', () => undefined).resume();
        res.end();
        return;
      }
      await streamInto(reply.body, res);
  }
}

/**
 * Streams `body` into the response with backpressure; resolves when the response finished. A body
 * that fails destroys the response (the client sees a cut transfer, never a short object) and a
 * client that goes away destroys the body (releasing its upstream connection); either rejects.
 * Plain pipe() plus three listeners: stream.pipeline allocates an AbortController and a
 * DOMException per call, a measurable share of a small request's CPU.
 */
function streamInto(body: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error: Error | null) => {
      body.off('error', onBodyError);
      res.off('finish', onFinish);
      res.off('close', onClose);
      if (error === null) {
        resolve();
        return;
      }
      body.unpipe(res);
      body.on('error', () => undefined); // it has failed or is being torn down: nothing more to report
      body.destroy();
      res.destroy(error);
      reject(error);
    };
    const onBodyError = (error: Error) => settle(error);
    const onFinish = () => settle(null);
    const onClose = () =>
      settle(res.writableFinished ? null : new S3Error('RequestTimeout', 'The client closed the connection before the response was complete.'));
    // Plain listeners, not once(): settle() removes all three, and once() would add a wrapper each.
    body.on('error', onBodyError);
    res.on('finish', onFinish);
    res.on('close', onClose);
    body.pipe(res);
  });
}

export interface SendErrorOptions {
  /**
   * For senders nobody authenticated: a slot for discarding the rest of their body (null when
   * none is free: the answer is sent and the connection closed at once). Authenticated senders
   * always get the lingering close.
   */
  lingerSlot?: () => (() => void) | null;
  /** The longest the rest of the body is waited for (default LINGER_TOTAL_MS). */
  lingerMs?: number;
}

/**
 * Sends an error as S3's `<Error>` document. Unexpected errors become InternalError without
 * leaking internals. When the client may still be sending a body we did not read, see
 * refuseWhileBodyPending.
 */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  requestId: string,
  resource: string,
  options: SendErrorOptions = {},
): void {
  const s3Error = isS3Error(error) ? error : new S3Error('InternalError', undefined, { cause: error });
  if (!isS3Error(error)) logToStderr('error', 'unexpected error', { requestId, error: describe(error) });
  if (res.headersSent) {
    // Too late for an error document: cut the connection so the client sees a failed transfer, not a short object.
    res.destroy(s3Error);
    return;
  }
  const headers: Record<string, string> = { ...s3Error.headers, 'x-amz-request-id': requestId };
  const xml = s3Error.toXml(resource, requestId);
  if (req.complete || !hasRequestBody(req)) {
    sendXml(res, s3Error.status, xml, headers);
    return;
  }
  const release = options.lingerSlot === undefined ? () => undefined : options.lingerSlot();
  if (release === null) {
    sendXml(res, s3Error.status, xml, { ...headers, connection: 'close' });
    req.resume();
    return;
  }
  refuseWhileBodyPending(req, res, s3Error.status, xml, headers, release, options.lingerMs ?? LINGER_TOTAL_MS);
}

/** How much of a refused request's unread body is read and discarded before the connection is cut. */
const LINGER_BYTES = 16 * 1024 * 1024;
/** The longest pause in the rest of a refused body, and the longest the whole rest may take. */
const LINGER_IDLE_MS = 5_000;
const LINGER_TOTAL_MS = 30_000;

/**
 * Answers a request refused while its body is still arriving (bad key, no permission, a body over
 * its limit or found bad part-way, without Expect: 100-continue). Closing the socket while request
 * bytes are unread makes the kernel send a reset, and a reset destroys the answer the client has not
 * read yet (it sees "connection reset" or an empty reply instead of the S3 error). Node closes such
 * a connection itself as soon as the response ends when the client sent `Connection: close`. So the
 * whole answer is written at once (its Content-Length lets the client read it), but the response is
 * only ended once the rest of the body was read and discarded: a lingering close. The connection then
 * closes cleanly, or stays usable for keep-alive. A body that goes on past LINGER_BYTES, pauses
 * longer than LINGER_IDLE_MS or takes longer than LINGER_TOTAL_MS is cut off. Bodies declared larger
 * than LINGER_BYTES are not waited for: the answer is sent and the connection closed.
 */
/** Responses whose complete answer is written while the rest of their request body is discarded: how to end them. */
const lingering = new WeakMap<object, () => void>();

function refuseWhileBodyPending(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  xml: string,
  headers: Record<string, string>,
  release: () => void,
  lingerMs: number,
): void {
  const declared = declaredBodyLength(req);
  if (declared !== null && declared > LINGER_BYTES) {
    release();
    sendXml(res, status, xml, { ...headers, connection: 'close' });
    req.resume();
    return;
  }
  // Whatever was reading the body (a verifier, a form parser) lets go: from here it is only discarded.
  // (Unpiping pauses the request, so this comes before the resume below.)
  req.unpipe();
  const body = Buffer.from(xml);
  res.writeHead(status, { ...headers, 'content-type': 'application/xml', 'content-length': body.length });
  res.write(res.req.method === 'HEAD' ? Buffer.alloc(0) : body);
  let drained = 0;
  let idle: NodeJS.Timeout;
  const total = setTimeout(() => stop('cut'), lingerMs).unref();
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => stop('cut'), Math.min(LINGER_IDLE_MS, lingerMs)).unref();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > LINGER_BYTES) stop('cut');
    else armIdle();
  };
  let stopped = false;
  const stop = (how: 'body-ended' | 'cut' | 'answer-only') => {
    if (stopped) return;
    stopped = true;
    release();
    clearTimeout(idle);
    clearTimeout(total);
    lingering.delete(res);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', onClose);
    res.end();
    // The rest of the body will not be read: the connection cannot carry another request.
    if (how === 'cut') req.socket.destroy();
  };
  const onEnd = () => stop('body-ended');
  const onClose = () => stop(req.complete ? 'body-ended' : 'cut');
  // Node's parser may fail on the rest of the body (answerClientError): the answer is complete, so end it there.
  lingering.set(res, () => stop('answer-only'));
  armIdle();
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('close', onClose);
  req.resume();
}

/** Whether the request announced a body (a length over 0, or chunked framing). */
export function hasRequestBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** The body length on the wire the client announced (Content-Length), or null when it did not. */
function declaredBodyLength(req: IncomingMessage): number | null {
  const value = req.headers['content-length'];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * The S3 listener's `clientError` handler (`server.on('clientError', answerClientError)`). Node
 * calls it for requests its HTTP parser refuses (malformed request lines or headers, Content-Length
 * with Transfer-Encoding, oversized headers, broken chunked framing, bytes after a request that do
 * not start another one) and when a request takes longer than the request timeout. By default Node
 * then answers a bare `400 Bad Request` that S3 clients cannot parse, and drops any response still
 * being prepared for an earlier, complete request on the same connection. Here that response is
 * let finish first; otherwise an S3 `<Error>` document is sent. The connection is closed either
 * way, since the parser cannot continue.
 */
export function answerClientError(error: Error & { code?: string; reason?: string; rawPacket?: Buffer }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const current = (socket as Duplex & { _httpMessage?: InFlightResponse | null })._httpMessage;
  const answered = current ? lingering.get(current) : undefined;
  if (current && answered) {
    // A refused request's answer is written; its body turned out to be broken HTTP: end it, then close.
    answered();
    endSocket(socket);
    return;
  }
  if (current && current.req?.complete && error.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
    // The bad bytes came after a complete request whose answer is on its way: deliver it, then close.
    if (current.writableEnded) endSocket(socket);
    else current.once('close', () => endSocket(socket));
    return;
  }
  if (current?.headersSent) {
    // Too late for an error document: cut the connection so the client sees a failed transfer.
    socket.destroy();
    return;
  }
  const requestId = newRequestId();
  const requestLine = /^([A-Z]{1,20}) (\/[^\s]{0,1024})/.exec(error.rawPacket?.subarray(0, 1100).toString('latin1') ?? '');
  const s3Error = clientErrorAsS3Error(error.code, error.reason);
  const body = Buffer.from(s3Error.toXml(requestLine?.[2] ?? '/', requestId));
  const head =
    `HTTP/1.1 ${s3Error.status} ${STATUS_CODES[s3Error.status] ?? 'Bad Request'}\r\n` +
    `content-type: application/xml\r\n` +
    `content-length: ${body.length}\r\n` +
    `x-amz-request-id: ${requestId}\r\n` +
    `server: keygate\r\n` +
    `connection: close\r\n\r\n`;
  endSocket(socket, requestLine?.[1] === 'HEAD' ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

/** What answerClientError needs of the ServerResponse Node keeps on the socket (`socket._httpMessage`). */
interface InFlightResponse {
  headersSent: boolean;
  writableEnded: boolean;
  req?: { complete: boolean };
  once(event: 'close', listener: () => void): unknown;
}

/** Sends `bytes` (if any) and closes gracefully; a peer that never reads is cut off after a while. */
function endSocket(socket: Duplex, bytes?: Buffer): void {
  socket.end(bytes);
  const linger = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
  socket.once('close', () => clearTimeout(linger));
}

const CLIENT_ERROR_LINGER_MS = 5_000;

/**
 * Node's parser error codes (llhttp's HPE_*, Node's ERR_HTTP_*) as the S3 error a client can act
 * on. `reason` is llhttp's short description (e.g. "Invalid header value char").
 */
export function clientErrorAsS3Error(code: string | undefined, reason?: string): S3Error {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new S3Error(
        'RequestHeaderSectionTooLarge',
        'The request headers are larger than the gateway accepts (16 KiB in total); send fewer or shorter headers.',
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new S3Error('RequestTimeout', 'The request was not received completely within the time the gateway allows; retry it.');
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return new S3Error(
        'InvalidRequest',
        'The request repeats Content-Length or combines it with Transfer-Encoding; send exactly one Content-Length, or Transfer-Encoding: chunked alone.',
      );
    case 'HPE_INVALID_CONTENT_LENGTH':
      return new S3Error('InvalidArgument', 'Content-Length must appear once and be a non-negative integer.');
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return new S3Error('InvalidRequest', 'Transfer-Encoding must be "chunked" (as the last coding) or absent.');
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
    case 'HPE_INVALID_EOF_STATE':
      return new S3Error('IncompleteBody', 'The chunked request body is not valid HTTP chunked framing.');
    case 'HPE_INVALID_METHOD':
      return new S3Error('InvalidRequest', 'The request method is not a valid HTTP method.');
    default:
      return new S3Error(
        'InvalidRequest',
        `The request is not valid HTTP/1.1 (${reason ?? code ?? 'unparseable'}); check the request line and header names and values.`,
      );
  }
}
