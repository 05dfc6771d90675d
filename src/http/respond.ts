/**
 * Writing S3 responses straight to Node's ServerResponse. The S3 listener bypasses web Response
 * objects so bodies stream through Node pipelines with backpressure and no extra copies.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { S3Error, isS3Error } from '../s3/errors.js';

export function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

export function sendXml(res: ServerResponse, status: number, xml: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(xml);
  res.writeHead(status, { ...headers, 'content-type': 'application/xml', 'content-length': body.length });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Sends an error as S3's `<Error>` document. Unexpected errors become InternalError without
 * leaking internals. When the client may still be sending a body we did not read, the connection
 * is closed so the unread bytes are not parsed as the next request.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, error: unknown, requestId: string, resource: string): void {
  const s3Error = isS3Error(error) ? error : new S3Error('InternalError', undefined, { cause: error });
  if (!isS3Error(error)) {
    console.error(JSON.stringify({ level: 'error', msg: 'unexpected error', requestId, error: describe(error) }));
  }
  if (res.headersSent) {
    // Too late for an error document: cut the connection so the client sees a failed transfer, not a short object.
    res.destroy(s3Error);
    return;
  }
  const bodyPending = !req.complete && hasRequestBody(req);
  const headers: Record<string, string> = { ...s3Error.headers, 'x-amz-request-id': requestId };
  if (bodyPending) headers.connection = 'close';
  sendXml(res, s3Error.status, s3Error.toXml(resource, requestId), headers);
  if (bodyPending) req.resume();
}

function hasRequestBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
