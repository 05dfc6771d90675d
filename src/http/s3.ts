/**
 * The S3 listener: one request = parse address -> verify SigV4 -> classify -> authorize ->
 * handle (synthesize or stream upstream). Hono routes the few non-S3 paths; everything else is
 * handled on Node's raw request/response so the exact request target (needed for SigV4, and for
 * keys containing `..` or `//`) and streaming with backpressure are preserved.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Hono } from 'hono';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { authorize } from '../authz.js';
import type { Config } from '../config.js';
import type { AccessKey } from '../keys/model.js';
import { parseAddress, type S3Address } from '../s3/address.js';
import { S3Error, isS3Error } from '../s3/errors.js';
import { executeOperation, planOperation, type HandlerDeps } from '../s3/handlers.js';
import { classify, type S3Operation } from '../s3/operations.js';
import { createPayloadVerifier, type PayloadVerifier } from '../sigv4/payload.js';
import { verifyRequest } from '../sigv4/verify.js';
import type { KeyLookup, VerifiedRequest } from '../sigv4/types.js';
import type { Store } from '../store/db.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import { handlePostObject, isPostObjectRequest, type PostObjectDeps } from '../s3/post-object.js';
import { answerPreflight, applyCorsHeaders } from './cors.js';
import { newRequestId, sendError } from './respond.js';

export const S3_HEALTH_PATH = '/_health';

export interface S3AppDeps {
  config: Config;
  store: Store;
  resolver: UpstreamResolver;
  /** Per-key admission (rate limiting); throws an S3Error (SlowDown) to refuse. */
  admit?: (accessKeyId: string) => void;
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

/** The non-S3 routes of the S3 listener (health); `_` cannot appear in bucket names, so none shadows a bucket. */
export function createS3ServiceApp(): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get(S3_HEALTH_PATH, (c) => c.json({ status: 'ok' }));
  return app;
}

/**
 * The Node request listener of the S3 listener. S3 requests bypass Hono's Request/Response
 * objects: Hono rewrites HEAD responses and normalizes URLs, and we need the raw request target
 * and Node streams end to end.
 */
export function createS3Listener(deps: S3AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const handlerDeps: HandlerDeps = { resolver: deps.resolver, region: deps.config.region };
  const serviceListener = getRequestListener(createS3ServiceApp().fetch);
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === S3_HEALTH_PATH) void serviceListener(req, res);
    else void handleS3Request(deps, handlerDeps, req, res);
  };
}

/**
 * Node answers `Expect: 100-continue` itself unless `checkContinue` is handled. We handle it so an
 * unauthorized upload is refused before the client sends its body.
 */
export function attachExpectContinue(server: Server, listener: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('checkContinue', (req: GatewayRequest, res: ServerResponse) => {
    req[EXPECTS_CONTINUE] = true;
    listener(req, res);
  });
}

async function handleS3Request(deps: S3AppDeps, handlerDeps: HandlerDeps, req: GatewayRequest, res: ServerResponse): Promise<void> {
  const requestId = newRequestId();
  const record = deps.observe ? startRecord(deps.observe, requestId, req, res) : null;
  res.setHeader('x-amz-request-id', requestId);
  res.setHeader('server', 'keygate');
  const requestTarget = req.url ?? '/';
  let resource = requestTarget.split('?', 1)[0] ?? '/';
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new S3Error('RequestTimeout', 'The client closed the connection.'));
  };
  res.on('close', onClose);
  try {
    const method = (req.method ?? 'GET').toUpperCase();
    const address: S3Address = parseAddress(requestTarget, req.headers.host, deps.config.domain);
    resource = address.rawPath;
    if (method === 'OPTIONS') {
      // CORS preflights carry no credentials: answered from the bucket's rules, never authenticated or forwarded.
      if (record) {
        record.operation = 'PreflightRequest';
        record.bucket = address.bucket;
        record.objectKey = address.key;
      }
      answerPreflight(deps.store.buckets, req, res, address);
      return;
    }
    applyCorsHeaders(deps.store.buckets, req, res, address.bucket, method);
    if (isPostObjectRequest(method, address.bucket, address.key, address.query, req.headers['content-type'])) {
      // The form authenticates itself (POST policy); its fields are in the body, so there is nothing to check before 100 Continue.
      if (req[EXPECTS_CONTINUE]) res.writeContinue();
      await handlePostObject(postObjectDeps(deps, handlerDeps, record), { req, res, bucket: address.bucket!, signal: abort.signal });
      return;
    }
    const verified = verify(deps, req, method, address);
    if (record) record.accessKeyId = verified.accessKeyId;
    deps.admit?.(verified.accessKeyId);
    const operation = classify(method, address, req.headers);
    if (record) recordOperation(record, operation);
    authorize(verified.key, operation);
    deps.store.keys.touchLastUsed(verified.accessKeyId);

    const contentLength = bodyLength(req, verified) ?? 0;
    // PUT/POST always run through the payload verifier, even when empty: a signed payload hash or
    // an aws-chunked final-chunk signature still has to be checked.
    const hasBody = method === 'PUT' || method === 'POST' || contentLength > 0;
    const plan = await planOperation(handlerDeps, operation, hasBody ? contentLength : null);
    if (req[EXPECTS_CONTINUE]) res.writeContinue();
    let body: PayloadVerifier | null = null;
    if (hasBody) {
      // CompleteMultipartUpload's x-amz-checksum-* headers describe the whole object, not its XML body.
      const checksumHeaders = operation.name === 'CompleteMultipartUpload' ? 'ignore' : 'verify';
      const verifier = createPayloadVerifier(verified, req.headersDistinct, { checksumHeaders, debug: deps.config.debugSignatures });
      feedBody(req, verifier);
      body = verifier;
    } else {
      req.resume();
    }
    await executeOperation(handlerDeps, plan, {
      operation,
      key: verified.key,
      headers: req.headers,
      body,
      contentLength: hasBody ? contentLength : null,
      checksums: body !== null ? { get: () => body.checksums } : undefined,
      signal: abort.signal,
      res,
    });
  } catch (error) {
    if (record && isS3Error(error)) record.errorCode = error.code;
    if (abort.signal.aborted && res.destroyed) return;
    sendError(req, res, error, requestId, resource);
  } finally {
    res.off('close', onClose);
  }
}

/** Per connection: socket.bytesRead already attributed to earlier requests. */
const bytesReadAccounted = new WeakMap<Socket, number>();

/** Starts the request's record and emits it exactly once, when the response finishes or the connection closes. */
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
      console.error(JSON.stringify({ level: 'error', msg: 'request observer failed', requestId, error: String(error) }));
    }
  };
  res.once('finish', emit);
  res.once('close', emit);
  return record;
}

function recordOperation(record: S3RequestRecord, operation: S3Operation): void {
  record.operation = operation.name;
  record.bucket = operation.bucket;
  record.objectKey = operation.key;
}

function verify(deps: S3AppDeps, req: IncomingMessage, method: string, address: S3Address): VerifiedRequest<AccessKey> {
  return verifyRequest<AccessKey>(
    // headersDistinct keeps repeated headers apart: SigV4 joins them with ',' where Node uses ', '.
    { method, rawPath: address.rawPath, rawQuery: address.rawQuery, headers: req.headersDistinct },
    { lookup: keyLookup(deps), regions: deps.config.acceptedRegions, debug: deps.config.debugSignatures },
  );
}

/** Access keys with their secrets, for signature checks. */
function keyLookup(deps: S3AppDeps): KeyLookup<AccessKey> {
  return (accessKeyId) => {
    const found = deps.store.keys.findWithSecret(accessKeyId);
    if (!found) return undefined;
    const { secretAccessKey, ...key } = found;
    return { secretAccessKey, key };
  };
}

/** POST Object verifies its own form; the record, admission and last-used follow the same steps as other requests. */
function postObjectDeps(deps: S3AppDeps, handlerDeps: HandlerDeps, record: S3RequestRecord | null): PostObjectDeps {
  return {
    handlerDeps,
    lookup: keyLookup(deps),
    regions: deps.config.acceptedRegions,
    publicUrl: deps.config.publicUrl,
    onAuthenticated: (accessKeyId) => {
      if (record) record.accessKeyId = accessKeyId;
      deps.admit?.(accessKeyId);
    },
    onAuthorized: (accessKeyId) => deps.store.keys.touchLastUsed(accessKeyId),
    onClassified: (operation) => {
      if (record) recordOperation(record, operation);
    },
  };
}

/** The decoded body length: x-amz-decoded-content-length for aws-chunked bodies, else Content-Length. */
function bodyLength(req: IncomingMessage, verified: VerifiedRequest<AccessKey>): number | null {
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
    throw new S3Error('MissingContentLength', 'Send Content-Length (or aws-chunked with x-amz-decoded-content-length); S3 does not accept plain chunked uploads.');
  }
  return null;
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
