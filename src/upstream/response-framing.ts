/**
 * An undici interceptor that keeps upstream answers from stopping the process.
 *
 * undici 7 (the last line for Node 20) throws an uncatchable AssertionError when a connection the
 * upstream closes after its answer (`Connection: close`, as moto and many HTTP/1.0 servers send)
 * ends while undici's HTTP parser is paused by backpressure: the gateway's client reads slower than
 * the upstream sends, the last bytes of the body arrive, the parser pauses before it completes the
 * message, the upstream's FIN arrives, and undici asserts the parser is not paused (nodejs/undici
 * issue 5360, fixed in undici 8, which needs Node 22). The parser pauses only when a body chunk is
 * refused for backpressure, and the FIN is only seen once every received byte has been parsed, so:
 *
 * - the chunk that completes a `Content-Length` body never pauses the parser (the message completes
 *   at once; the chunk waits in the body stream, which holds at most one chunk more than usual);
 * - a chunked body cannot end at a pause (its terminating chunk is still unread, so no FIN is seen);
 * - a body delimited only by the connection closing could end at any pause, so such an answer is
 *   refused: S3 servers frame their answers, and an unframed one is cut off as a broken upstream.
 *
 * What remains is an upstream that announces a length, says `Connection: close`, and closes before
 * sending the whole body while the parser is paused. That needs a failing upstream and a slow client
 * together; it is the case undici 8 fixes.
 *
 * The guard speaks undici's handler protocol in its callback form (onHeaders/onData, the one
 * undici's own request() handler and HTTP/1 client use) and is installed by overriding the Agent's
 * dispatch: an interceptor added with compose() would convert every answer between the two handler
 * protocols twice (headers parsed to an object and back), a measurable share of a small request.
 */
import { Agent, type Dispatcher } from 'undici';

/** Thrown into an answer that has a body but neither a Content-Length nor chunked framing. */
export class UnframedAnswerError extends Error {
  readonly code = 'UNFRAMED_UPSTREAM_ANSWER';
  constructor() {
    super('the upstream answered without Content-Length or chunked framing (a body delimited by closing the connection)');
  }
}

/** Statuses whose answers never have a body (RFC 9110). */
const BODILESS_STATUSES = new Set([204, 304]);

type Handler = Dispatcher.DispatchHandler;

/** An undici Agent whose every request's answer passes the framing guard. */
export class FramingGuardedAgent extends Agent {
  override dispatch(options: Agent.DispatchOptions, handler: Handler): boolean {
    return super.dispatch(options, new FramingGuard(handler, String(options.method).toUpperCase()));
  }
}

/** Wraps one request's handler (undici's request() handler: the callback protocol). */
class FramingGuard implements Handler {
  /** Body bytes still to come, when the answer announced a length. */
  private remaining: number | null = null;
  private abort: ((error?: Error) => void) | null = null;

  constructor(
    private readonly handler: Handler,
    private readonly method: string,
  ) {}

  onConnect(abort: (error?: Error) => void, context?: unknown): void {
    this.abort = abort;
    // undici passes a context object too (typed as one argument only).
    (this.handler.onConnect as (abort: (error?: Error) => void, context?: unknown) => void)?.call(this.handler, abort, context);
  }

  onError(error: Error): void {
    this.handler.onError?.(error);
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: Parameters<NonNullable<Handler['onUpgrade']>>[2]): void {
    this.handler.onUpgrade?.(statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.handler.onResponseStarted?.();
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.handler.onBodySent?.(chunkSize, totalBytesSent);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode >= 200) {
      const { contentLength, chunked, closeDelimited } = framingOf(rawHeaders);
      this.remaining = contentLength;
      const hasBody = this.method !== 'HEAD' && !BODILESS_STATUSES.has(statusCode);
      if (hasBody && (closeDelimited || (contentLength === null && !chunked))) {
        this.abort?.(new UnframedAnswerError());
        return true;
      }
    }
    return this.handler.onHeaders?.(statusCode, rawHeaders, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    const more = this.handler.onData?.(chunk) ?? true;
    if (this.remaining === null) return more;
    this.remaining -= chunk.length;
    // The last chunk of the body: whatever the body stream says, the parser must not pause here.
    return this.remaining <= 0 ? true : more;
  }

  onComplete(trailers: string[] | null): void {
    this.handler.onComplete?.(trailers);
  }
}

/**
 * Content-Length (null when absent or unreadable) and whether the body is chunked, from raw header
 * pairs, read as undici's parser (llhttp) reads a response: chunked only when `chunked` is the
 * last transfer coding of all Transfer-Encoding headers together, and then Content-Length does not
 * count. A Transfer-Encoding that does not end in chunked means "until the connection closes".
 */
function framingOf(rawHeaders: Buffer[]): { contentLength: number | null; chunked: boolean; closeDelimited: boolean } {
  let contentLength: number | null = null;
  const codings: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 14 && name.toString('latin1').toLowerCase() === 'content-length') {
      const value = rawHeaders[i + 1]!.toString('latin1').trim();
      contentLength = /^\d+$/.test(value) ? Number(value) : null;
    } else if (name.length === 17 && name.toString('latin1').toLowerCase() === 'transfer-encoding') {
      codings.push(...rawHeaders[i + 1]!.toString('latin1').split(','));
    }
  }
  if (codings.length === 0) return { contentLength, chunked: false, closeDelimited: false };
  const chunked = codings.at(-1)!.trim().toLowerCase() === 'chunked';
  return { contentLength: chunked ? null : contentLength, chunked, closeDelimited: !chunked };
}
