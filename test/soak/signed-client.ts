/**
 * The soak's cheap S3 client: requests signed with aws4 (node:crypto HMACs, no SDK middleware
 * stack) and sent over one keep-alive undici Pool sized for the worker count. The load generator
 * shares two cores with the gateway and the upstream, so every microsecond spent here is taken
 * from the system under test.
 *
 * Each call reports when it started (before signing, so a request "started after" an instant was
 * also put on the wire after it) and when its response body was fully read, on the
 * performance.now() clock the revocation ledger uses.
 */
import { createHash } from 'node:crypto';
import aws4 from 'aws4';
import { Pool } from 'undici';

export interface SoakCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface SignedCall {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  bucket: string;
  /** Object key, decoded (encoded here). Absent for bucket-level requests. */
  key?: string;
  /** Query parameters, decoded; '' values are sent as bare names (`?uploads`). */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
  /**
   * How the payload is declared: 'signed' hashes the body into x-amz-content-sha256 (what most
   * SDKs do for small bodies), 'unsigned' sends UNSIGNED-PAYLOAD (what they do for large ones).
   */
  payload?: 'signed' | 'unsigned';
}

export interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** `<Code>` of an S3 XML error body, or null. */
  errorCode: string | null;
  startedAt: number;
  endedAt: number;
}

/** A transport failure (connection reset, timeout): never expected during the soak. */
export class ClientError extends Error {
  constructor(
    readonly call: string,
    readonly startedAt: number,
    readonly endedAt: number,
    cause: unknown,
  ) {
    super(`${call} failed on the client side: ${describeCause(cause)}`, { cause });
    this.name = 'ClientError';
  }
}

/** undici wraps socket errors; the innermost message and code say what actually happened. */
function describeCause(cause: unknown): string {
  const error = cause as { message?: string; code?: string; cause?: unknown };
  const own = `${error?.code ? `${error.code} ` : ''}${error?.message ?? String(cause)}`;
  return error?.cause ? `${own} (${describeCause(error.cause)})` : own;
}

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
/** A hung gateway must show up as a client error within the run, not as a stalled worker. */
const RESPONSE_TIMEOUT_MS = 60_000;

/** RFC 3986 encoding of one path segment or query component, as SigV4 canonicalizes it. */
export function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function objectPath(bucket: string, key?: string): string {
  if (key === undefined) return `/${bucket}`;
  return `/${bucket}/${key.split('/').map(encodeRfc3986).join('/')}`;
}

export class SignedClient {
  private readonly pool: Pool;
  private readonly host: string;

  constructor(endpoint: string, connections: number) {
    const url = new URL(endpoint);
    this.host = url.host;
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      headersTimeout: RESPONSE_TIMEOUT_MS,
      bodyTimeout: RESPONSE_TIMEOUT_MS,
      keepAliveTimeout: 30_000,
    });
  }

  async send(credentials: SoakCredentials, call: SignedCall): Promise<CallResult> {
    const startedAt = performance.now();
    const query = call.query
      ? Object.entries(call.query)
          .map(([name, value]) => (value === '' ? encodeRfc3986(name) : `${encodeRfc3986(name)}=${encodeRfc3986(value)}`))
          .join('&')
      : '';
    const path = objectPath(call.bucket, call.key) + (query ? `?${query}` : '');
    const body = call.body;
    const payloadHash = body === undefined ? EMPTY_SHA256 : call.payload === 'unsigned' ? 'UNSIGNED-PAYLOAD' : createHash('sha256').update(body).digest('hex');
    const headers: Record<string, string> = { 'x-amz-content-sha256': payloadHash, ...call.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    const signed = aws4.sign(
      { service: 's3', region: credentials.region, method: call.method, host: this.host, path, headers, doNotEncodePath: true },
      { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    );
    try {
      const response = await this.pool.request({
        method: call.method,
        path,
        headers: signed.headers as Record<string, string>,
        body: body ?? null,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      const responseBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const errorCode = response.statusCode >= 300 ? xmlErrorCode(responseBody) : null;
      return { status: response.statusCode, headers: response.headers, body: responseBody, errorCode, startedAt, endedAt: performance.now() };
    } catch (error) {
      throw new ClientError(`${call.method} ${path}`, startedAt, performance.now(), error);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

export function xmlErrorCode(body: Buffer): string | null {
  if (body.length === 0 || body.length > 64 * 1024) return null;
  return /<Code>([^<]*)<\/Code>/.exec(body.toString('utf8'))?.[1] ?? null;
}

/** `<Key>` values of a ListObjectsV2 / DeleteResult body, XML entities decoded. */
export function xmlKeys(body: Buffer, element: 'Contents' | 'Deleted' | 'Error'): string[] {
  const text = body.toString('utf8');
  const keys: string[] = [];
  const pattern = new RegExp(`<${element}>[\\s\\S]*?<Key>([^<]*)</Key>[\\s\\S]*?</${element}>`, 'g');
  for (const match of text.matchAll(pattern)) keys.push(decodeXmlEntities(match[1]!));
  return keys;
}

export function xmlValue(body: Buffer, element: string): string | null {
  const match = new RegExp(`<${element}>([^<]*)</${element}>`).exec(body.toString('utf8'));
  return match ? decodeXmlEntities(match[1]!) : null;
}

function decodeXmlEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    if (entity[0] === '#') return String.fromCodePoint(entity[1] === 'x' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[entity]!;
  });
}
