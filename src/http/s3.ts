/**
 * The S3 listener. One request runs one pipeline, top to bottom:
 *
 *   address -> (CORS preflight) -> authenticate -> admit -> classify -> authorize -> plan ->
 *   100 Continue -> open the verified body -> handle -> write the reply
 *
 * There are three ways to authenticate, all into the same steps: the Authorization header and a
 * presigned query (SigV4, src/sigv4/verify.ts), and a POST policy form (src/s3/post-object.ts),
 * whose fields are classified as a PutObject's headers through the operations table like any
 * request's. Node's raw request/response are used for S3 requests: the exact request target is
 * needed for SigV4 (and for keys containing `..` or `//`), and bodies stream with backpressure.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { assertSourceAllowed, authorize } from '../authz.js';
import { Cancellation } from '../cancellation.js';
import { clientAddress } from '../keys/source-ips.js';
import type { Config } from '../config.js';
import { S3Error, isS3Error } from '../errors.js';
import type { AccessKey } from '../keys/model.js';
import { logToStderr } from '../observability/log.js';
import { parseAddress, type S3Address } from '../s3/address.js';
import { classify, describeOperation, operationNameOf, type S3Operation } from '../s3/classify.js';
import { executeOperation, type HandlerDeps } from '../s3/handlers.js';
import { planOperation, type OperationPlan } from '../s3/plan.js';
import { authenticateForm, postObjectReply } from '../s3/post-object.js';
import type { Reply } from '../s3/reply.js';
import { HEADERS } from '../s3/request-headers.js';
import { UploadIdBinding } from '../s3/upload-ids.js';
import { checksumAlgorithmOfHeader } from '../sigv4/checksums.js';
import { createPayloadVerifier, type PayloadVerifier } from '../sigv4/payload.js';
import type { KeyLookup, VerifiedRequest } from '../sigv4/types.js';
import { verifyRequest } from '../sigv4/verify.js';
import type { Store } from '../store/store.js';
import type { UpstreamBody, UpstreamForwarder } from '../upstream/forward.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import { answerPreflight, applyCorsHeaders } from './cors.js';
import { hasRequestBody, newRequestId, sendError, writeReply } from './respond.js';
import { UnauthenticatedWork } from './unauthenticated.js';

export const S3_HEALTH_PATH = '/_health';

export interface S3AppDeps {
  config: Config;
  store: Store;
  resolver: UpstreamResolver;
  forwarder: Pick<UpstreamForwarder, 'forward'>;
  /** Creates and deletes RunPod buckets for CreateBucket/DeleteBucket; null or absent: they answer NotImplemented on RunPod. */
  lifecycle?: HandlerDeps['lifecycle'];
  /** Per-key admission (rate limiting, by the key's own limit or the gateway's); throws an S3Error (SlowDown) to refuse. */
  admit?: (key: Pick<AccessKey, 'accessKeyId' | 'rateLimit'>) => void;
  /** Told about every S3 request once its response is finished or the connection closed. */
  observe?: (record: S3RequestRecord) => void;
}

/** What one S3 request did: the access log line and the metrics are made from this. Never holds secrets. */
export interface S3RequestRecord {
  requestId: string;
  method: string;
  /** The S3 operation, once the request was classified. */
  operation: string | null;
  bucket: string | null;
  objectKey: string | null;
  /** The caller's access key id, once its signature verified. */
  accessKeyId: string | null;
  status: number;
  /** The S3 error code when the gateway refused or failed the request itself. */
  errorCode: string | null;
  /** Bytes read from / written to the client connection for this request (headers included). */
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** True when the client went away before the response was complete. */
  aborted: boolean;
  remoteAddress: string | null;
}

/** Marks requests that arrived with `Expect: 100-continue` (see attachExpectContinue). */
const EXPECTS_CONTINUE = Symbol('keygate.expectsContinue');
type GatewayRequest = IncomingMessage & { [EXPECTS_CONTINUE]?: boolean };

/**
 * A request that proved who sent it: its key, its operation, and how to get at its body. Header
 * and presigned authentication make one from the request line and headers, a POST form from its
 * fields.
 */
interface AuthenticatedRequest {
  accessKeyId: string;
  key: AccessKey;
  operation: S3Operation;
  /** Declared decoded body length (null: none declared). */
  bodyLength: number | null;
  /** The verified body, once the plan passed and 100 Continue went out. */
  openBody(plan: OperationPlan): Promise<UpstreamBody | null>;
  /** The client's answer made from the operation's reply (POST forms answer their own way). */
  answer(reply: Reply): Reply;
  dispose(): Promise<void>;
}

const HEALTH_ANSWER = JSON.stringify({ status: 'ok' });

/**
 * The Node request listener of the S3 listener. S3 requests use Node's raw request and response
 * (no web Request/Response objects): SigV4 needs the exact request target, and bodies stream with
 * backpressure. The one other route is the health check, GET or HEAD of /_health (`_` cannot
 * appear in bucket names, so it shadows no bucket); anything else sent there is an S3 request (and
 * refused as one).
 */
export function createS3Listener(deps: S3AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const pipeline = new S3Pipeline(deps);
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    // A health check with a body is no health check: it goes where bodies are bounded (and is refused).
    if (path === S3_HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD') && !hasRequestBody(req)) answerHealth(req, res);
    else {
      pipeline.handle(req, res).catch((error: unknown) => {
        // handle() answers every failure itself; only its cleanup (removing a spooled form file)
        // can still fail after the answer, and that must not become an unhandled rejection.
        logToStderr('error', 'request cleanup failed', { error: String(error) });
      });
    }
  };
}

function answerHealth(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(HEALTH_ANSWER) });
  res.end(req.method === 'HEAD' ? undefined : HEALTH_ANSWER);
}

/**
 * Node answers `Expect: 100-continue` itself unless `checkContinue` is handled, and any other
 * expectation with 417 unless `checkExpectation` is. We handle both: an unauthorized upload is
 * refused before the client sends its body, and (as S3 does) unknown expectations are ignored.
 */
export function attachExpectContinue(server: Server, listener: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('checkContinue', (req: GatewayRequest, res: ServerResponse) => {
    req[EXPECTS_CONTINUE] = true;
    listener(req, res);
  });
  server.on('checkExpectation', (req: GatewayRequest, res: ServerResponse) => listener(req, res));
}

class S3Pipeline {
  private readonly handlerDeps: HandlerDeps;
  private readonly unauthenticated: UnauthenticatedWork;

  constructor(private readonly deps: S3AppDeps) {
    this.handlerDeps = {
      resolver: deps.resolver,
      forwarder: deps.forwarder,
      lifecycle: deps.lifecycle ?? null,
      region: deps.config.region,
      signingRegions: deps.config.acceptedRegions,
      uploadIds: new UploadIdBinding(deps.store.deriveKey('upload-ids')),
      publicUrl: deps.config.publicUrl,
    };
    this.unauthenticated = new UnauthenticatedWork(deps.config.unauthenticatedMaxRequests);
  }

  async handle(req: GatewayRequest, res: ServerResponse): Promise<void> {
    const { deps } = this;
    const requestId = newRequestId();
    const record = deps.observe ? startRecord(deps.observe, requestId, req, res) : null;
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('server', 'keygate');
    let resource = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const cancellation = new Cancellation();
    const onClose = () => {
      if (!res.writableFinished) cancellation.cancel(new S3Error('RequestTimeout', 'The client closed the connection.'));
    };
    res.on('close', onClose);
    let request: AuthenticatedRequest | null = null;
    try {
      // Before any lookup: keys and buckets deleted before this moment are gone for this request.
      await deps.store.beginRequest();
      const method = (req.method ?? 'GET').toUpperCase();
      const address = parseAddress(req.url ?? '/', req.headers.host, deps.config.domain);
      resource = address.rawPath;
      if (method === 'OPTIONS') {
        // CORS preflights carry no credentials: answered from the bucket's rules, never authenticated or
        // forwarded. Nor do they carry a body; one is refused like any unauthenticated sender's.
        if (hasRequestBody(req)) throw new S3Error('InvalidRequest', 'A CORS preflight (OPTIONS) request has no body.');
        if (record) Object.assign(record, { operation: 'PreflightRequest', bucket: address.bucket, objectKey: address.key });
        answerPreflight(deps.store.buckets, req, res, address);
        return;
      }
      applyCorsHeaders(deps.store.buckets, req, res, address.bucket, method);

      request = await this.authenticate(req, res, method, address, cancellation);
      if (record) record.accessKeyId = request.accessKeyId;
      // Before admission: requests from outside a key's networks must not use up its rate budget.
      assertSourceAllowed(request.key, clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], deps.config.trustedProxies));
      deps.admit?.(request.key);
      const { operation } = request;
      if (record) Object.assign(record, { operation: operation.name, bucket: operation.bucket, objectKey: operation.key });
      authorize(request.key, operation);
      // Upload ids are the gateway's, bound to a bucket and key: one issued elsewhere is no upload here.
      if (operation.spec.uploadIds) this.handlerDeps.uploadIds.openInRequest(operation);
      deps.store.keys.touchLastUsed(request.accessKeyId);
      const plan = await planOperation(this.handlerDeps, operation, request.bodyLength);
      if (req[EXPECTS_CONTINUE] && !res.headersSent) res.writeContinue();
      const body = await request.openBody(plan);
      const accessKeyId = request.accessKeyId;
      // For handlers that read a body before acting on it: the key as it is once the body arrived.
      const keyNow = async () => {
        await deps.store.beginRequest();
        const found = deps.store.keys.findForVerification(accessKeyId);
        if (found === null) throw new S3Error('InvalidAccessKeyId', 'The access key was deleted while this request was being sent; nothing was done.');
        return found.key;
      };
      const reply = await executeOperation(this.handlerDeps, plan, { key: request.key, method, body, signal: cancellation, requestId, keyNow });
      if (reply.kind === 'xml' && reply.release) releaseWhenDone(res, reply.release);
      await writeReply(res, request.answer(reply));
    } catch (error) {
      if (record && isS3Error(error)) record.errorCode = error.code;
      if (cancellation.aborted && res.destroyed) return;
      const authenticated = request !== null;
      // Nobody known sent this: the rest of its body is discarded only within the cap and the deadline.
      const unauthenticated = { lingerSlot: () => this.unauthenticated.tryEnter(), lingerMs: deps.config.unauthenticatedTimeoutMs };
      sendError(req, res, error, requestId, resource, authenticated ? {} : unauthenticated);
    } finally {
      res.off('close', onClose);
      await request?.dispose();
    }
  }

  /** The three ways in: a POST policy form, or SigV4 by header or presigned query. */
  private async authenticate(
    req: GatewayRequest,
    res: ServerResponse,
    method: string,
    address: S3Address,
    signal: Cancellation,
  ): Promise<AuthenticatedRequest> {
    if (operationNameOf(method, address, req.headers) === 'PostObject') return this.authenticateForm(req, res, address, signal);
    const verified = verifyRequest<AccessKey>(
      // headersDistinct keeps repeated headers apart: SigV4 joins them with ',' where Node uses ', '.
      { method, rawPath: address.rawPath, rawQuery: address.rawQuery, headers: req.headersDistinct },
      { lookup: this.keyLookup(), regions: this.deps.config.acceptedRegions, debug: this.deps.config.debugSignatures },
    );
    const operation = classify(method, address, req.headersDistinct);
    return new SigV4AuthenticatedRequest(this, req, method, verified, operation, declaredBodyLength(req, verified));
  }

  /** A POST Object form: its fields authenticate it; nobody is known until they did, so they have a deadline and a cap. */
  private async authenticateForm(req: GatewayRequest, res: ServerResponse, address: S3Address, signal: Cancellation): Promise<AuthenticatedRequest> {
    const release = this.unauthenticated.tryEnter();
    if (release === null) {
      throw new S3Error('SlowDown', 'The gateway is reading too many unauthenticated form uploads at once; retry shortly.', {
        headers: { 'retry-after': '1' },
      });
    }
    // The form authenticates itself (POST policy); its fields are in the body, so there is nothing to check before 100 Continue.
    if (req[EXPECTS_CONTINUE]) res.writeContinue();
    const bucket = address.bucket!;
    let form;
    try {
      form = await authenticateForm(req, bucket, {
        // Read after the form's fields, which the sender may have dragged out: as of now, not as of the request's start.
        refresh: () => this.deps.store.beginRequest(),
        lookup: this.keyLookup(),
        regions: this.deps.config.acceptedRegions,
        fieldsDeadlineMs: this.deps.config.unauthenticatedTimeoutMs,
        signal,
      });
    } finally {
      release();
    }
    // Routing is looked up next, as of the refresh made once the fields arrived (see refresh above).
    const operation = describeOperation('PostObject', { bucket, key: form.objectKey, query: [] }, form.headers);
    // The form's fields are its headers; who sent it is still the request's User-Agent.
    operation.userAgent = req.headers['user-agent'];
    return {
      accessKeyId: form.accessKeyId,
      key: form.key,
      operation,
      bodyLength: null,
      openBody: (plan) => form.spool(plan.maxBodyBytes),
      answer: (reply) => postObjectReply(reply, form, bucket, this.deps.config.publicUrl),
      dispose: () => form.dispose(),
    };
  }

  /**
   * The body of a SigV4 request, verified as it streams (payload hash, aws-chunked signatures,
   * checksums, length). PUT and POST always run through the verifier, even when empty: a signed
   * payload hash or an aws-chunked final-chunk signature still has to be checked.
   */
  async openSignedBody(
    req: IncomingMessage,
    method: string,
    verified: VerifiedRequest<AccessKey>,
    plan: OperationPlan,
    bodyLength: number | null,
  ): Promise<UpstreamBody | null> {
    const hasBody = method === 'PUT' || method === 'POST' || (bodyLength ?? 0) > 0;
    if (!hasBody) {
      req.resume();
      return null;
    }
    const spec = plan.operation.spec;
    // CompleteMultipartUpload's x-amz-checksum-* headers describe the whole object, not its XML body.
    const checksumHeaders = spec.headers.includes(HEADERS.objectChecksums) ? 'ignore' : 'verify';
    const verifier = createPayloadVerifier(verified, req.headersDistinct, { checksumHeaders, debug: this.deps.config.debugSignatures });
    feedBody(req, verifier);
    if (spec.body.kind === 'none') {
      // Verified (its signature may cover it), then dropped: the operation takes no body.
      await consume(verifier);
      // The sender may have dragged that body out: lookups after it (a copy source's route) see every change made meanwhile.
      await this.deps.store.beginRequest();
      return null;
    }
    return {
      stream: verifier,
      length: bodyLength ?? 0,
      sha256: verified.payload.kind === 'signed' ? verified.payload.sha256 : null,
      checksums: () => verifier.checksums,
      trailerChecksum: verified.trailerHeaders.find((name) => checksumAlgorithmOfHeader(name) !== undefined) ?? null,
    };
  }

  /**
   * Access keys with their secrets, for signature checks, as of the latest store.beginRequest():
   * the request's start, or after waiting on the client when it awaited beginRequest() again.
   */
  private keyLookup(): KeyLookup<AccessKey> {
    return (accessKeyId) => this.deps.store.keys.findForVerification(accessKeyId) ?? undefined;
  }
}

/**
 * A request that SigV4 authenticated (Authorization header or presigned query). A class rather than
 * an object of closures: a request holds it while its upstream answers, and every object held then
 * survives a scavenge. The verification result is let go once the body is open (a body's verifier
 * keeps what it needs of it; a bodiless request keeps nothing). Named apart from sigv4's
 * SignedRequest, the verifier's input.
 */
class SigV4AuthenticatedRequest implements AuthenticatedRequest {
  readonly accessKeyId: string;
  readonly key: AccessKey;
  private verified: VerifiedRequest<AccessKey> | null;

  constructor(
    private readonly pipeline: S3Pipeline,
    private readonly req: GatewayRequest,
    private readonly method: string,
    verified: VerifiedRequest<AccessKey>,
    readonly operation: S3Operation,
    readonly bodyLength: number | null,
  ) {
    this.accessKeyId = verified.accessKeyId;
    this.key = verified.key;
    this.verified = verified;
  }

  openBody(plan: OperationPlan): Promise<UpstreamBody | null> {
    const verified = this.verified;
    if (verified === null) throw new Error('the body of a request is opened once');
    this.verified = null;
    return this.pipeline.openSignedBody(this.req, this.method, verified, plan, this.bodyLength);
  }

  answer(reply: Reply): Reply {
    return reply;
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

/** Calls `release` once the response has been handed to the OS in full, or its connection is gone. */
function releaseWhenDone(res: ServerResponse, release: () => void): void {
  if (res.writableFinished || res.destroyed) {
    release();
    return;
  }
  res.once('finish', release);
  res.once('close', release);
}

/** Reads a stream to its end, discarding it (its errors propagate). */
async function consume(stream: PayloadVerifier): Promise<void> {
  for await (const chunk of stream) void chunk;
}

/**
 * Feeds the request body into its payload verifier. A client that goes away destroys the verifier,
 * and with it any upstream request reading from it. A verifier that fails (bad chunk, body longer
 * than declared, a reader that stopped at a size limit) only lets go of the request: destroying the
 * request would reset the connection before the error answer is delivered (respond.ts reads and
 * discards the rest of the body instead).
 */
function feedBody(req: IncomingMessage, verifier: PayloadVerifier): void {
  const onClientGone = () => {
    if (!req.complete) verifier.destroy(new S3Error('IncompleteBody', 'The client closed the connection before the body was complete.'));
  };
  req.once('close', onClientGone);
  verifier.once('close', () => {
    req.off('close', onClientGone);
    req.unpipe(verifier);
  });
  verifier.once('error', () => req.unpipe(verifier));
  req.pipe(verifier);
}

/** The decoded body length: x-amz-decoded-content-length for aws-chunked bodies, else Content-Length. */
function declaredBodyLength(req: IncomingMessage, verified: VerifiedRequest<AccessKey>): number | null {
  const chunked = verified.payload.kind === 'streaming-signed' || verified.payload.kind === 'streaming-unsigned-trailer';
  if (chunked) {
    if (verified.decodedContentLength === null) {
      throw new S3Error('MissingContentLength', 'aws-chunked uploads must send x-amz-decoded-content-length.');
    }
    return verified.decodedContentLength;
  }
  const header = req.headers['content-length'];
  if (header !== undefined) {
    if (!/^\d+$/.test(header)) throw new S3Error('InvalidArgument', 'Content-Length must be a non-negative integer.');
    return Number(header);
  }
  if (req.headers['transfer-encoding'] !== undefined) {
    throw new S3Error(
      'MissingContentLength',
      'Send Content-Length (or aws-chunked with x-amz-decoded-content-length); S3 does not accept plain chunked uploads.',
    );
  }
  return null;
}

/** Per connection: socket.bytesRead already attributed to earlier requests. */
const bytesReadAccounted = new WeakMap<Socket, number>();

/**
 * Starts the request's record and emits it exactly once, when the response closes: a ServerResponse
 * always emits 'close', right after 'finish' when it was sent whole, or when the connection went
 * away before that. One plain listener: `once()` would add a bound wrapper and its state, and they
 * would live as long as the request (every object a request holds while its upstream answers
 * survives a scavenge, which is where the gateway's GC cost comes from; docs/benchmarks.md).
 */
function startRecord(observe: (record: S3RequestRecord) => void, requestId: string, req: IncomingMessage, res: ServerResponse): S3RequestRecord {
  const started = process.hrtime.bigint();
  const socket = req.socket;
  // The request's head (and a small body) was read before this request began: count from where the
  // previous request on this keep-alive connection ended, not from now.
  const readBefore = bytesReadAccounted.get(socket) ?? 0;
  const writtenBefore = socket.bytesWritten;
  const record: S3RequestRecord = {
    requestId,
    method: (req.method ?? 'GET').toUpperCase(),
    operation: null,
    bucket: null,
    objectKey: null,
    accessKeyId: null,
    status: 0,
    errorCode: null,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 0,
    aborted: false,
    remoteAddress: socket.remoteAddress ?? null,
  };
  let emitted = false;
  const emit = () => {
    // Node emits a response's 'close' once; the guard keeps a second one from counting twice.
    if (emitted) return;
    emitted = true;
    record.status = res.statusCode;
    record.aborted = !res.writableFinished;
    record.bytesIn = socket.bytesRead - readBefore;
    bytesReadAccounted.set(socket, socket.bytesRead);
    record.bytesOut = socket.bytesWritten - writtenBefore;
    record.durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    try {
      observe(record);
    } catch (error) {
      logToStderr('error', 'request observer failed', { requestId, error: String(error) });
    }
  };
  res.on('close', emit);
  return record;
}
