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
 */
import type { Dispatcher } from 'undici';

/** Thrown into an answer that has a body but neither a Content-Length nor chunked framing. */
export class UnframedAnswerError extends Error {
  readonly code = 'UNFRAMED_UPSTREAM_ANSWER';
  constructor() {
    super('the upstream answered without Content-Length or chunked framing (a body delimited by closing the connection)');
  }
}

/** Statuses whose answers never have a body (RFC 9110). */
const BODILESS_STATUSES = new Set([204, 304]);

class FramingGuard implements Dispatcher.DispatchHandler {
  /** Body bytes still to come, when the answer announced a length. */
  private remaining: number | null = null;

  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly method: string,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: never): void {
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    const length = headers['content-length'];
    this.remaining = typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : null;
    const chunked = /\bchunked\b/i.test(String(headers['transfer-encoding'] ?? ''));
    const hasBody = this.method !== 'HEAD' && statusCode >= 200 && !BODILESS_STATUSES.has(statusCode);
    if (hasBody && this.remaining === null && !chunked) {
      controller.abort(new UnframedAnswerError());
      return;
    }
    this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.remaining === null) {
      this.handler.onResponseData?.(controller, chunk);
      return;
    }
    this.remaining -= chunk.length;
    // The last chunk of the body: whatever the body stream says, the parser must not pause here.
    this.handler.onResponseData?.(this.remaining <= 0 ? withoutPause(controller) : controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.handler.onResponseError?.(controller, error);
  }
}

/** The controller as the body stream sees it for a body's last chunk: asking to pause does nothing. */
function withoutPause(controller: Dispatcher.DispatchController): Dispatcher.DispatchController {
  return {
    get aborted() {
      return controller.aborted;
    },
    get paused() {
      return controller.paused;
    },
    get reason() {
      return controller.reason;
    },
    abort: (reason: Error) => controller.abort(reason),
    pause: () => undefined,
    resume: () => controller.resume(),
  };
}

/** The interceptor, for `agent.compose(...)`. */
export const responseFramingGuard: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) =>
  dispatch(options, new FramingGuard(handler, String(options.method).toUpperCase()));
