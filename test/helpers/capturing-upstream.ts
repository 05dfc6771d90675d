/**
 * A stand-in S3 upstream that records every request it receives (method, raw path, query names and
 * values, lower-case header names and values, body bytes) and answers each one plausibly, so a
 * gateway in front of it succeeds: GET -> 200 with a small XML document (GET / lists buckets),
 * HEAD -> 200 without a body, POST ?uploads -> InitiateMultipartUploadResult, POST ?uploadId ->
 * CompleteMultipartUploadResult, PUT -> 200 with an ETag, DELETE -> 204. Request bodies are always
 * consumed. No signature is checked: tests judge what was captured.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CapturedRequest {
  /** Arrival order, from 1. */
  seq: number;
  method: string;
  /** The request target's path exactly as received (still percent-encoded), without the query. */
  rawPath: string;
  /** The raw query string (without '?'), '' when none. */
  rawQuery: string;
  /** Decoded query pairs, in order (a bare `name` has the value ''). */
  query: Array<[string, string]>;
  /** Lower-case header name -> values, in arrival order (a header sent twice has two values). */
  headers: Record<string, string[]>;
  /** Body bytes received so far (all of them once `complete`). */
  body: Buffer;
  /** The whole body arrived (the request ended normally); false while streaming or when aborted. */
  complete: boolean;
  /** Resolves once the request ended or its connection went away. */
  settled: Promise<void>;
}

export interface CapturingUpstream {
  /** Base URL, e.g. http://127.0.0.1:12345 */
  endpoint: string;
  /** Every request received, in arrival order. */
  requests: CapturedRequest[];
  /** Called for every request as soon as its head arrived (before its body). */
  onRequest: ((request: CapturedRequest) => void) | null;
  /** Buckets GET / lists. */
  buckets: string[];
  /**
   * Answers a request in its own way (a hostile or broken upstream) when it returns true; the
   * plausible default answer otherwise. Called once the request's body has arrived.
   */
  answerWith: ((request: CapturedRequest, res: http.ServerResponse) => boolean) | null;
  stop(): Promise<void>;
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, '%20'));
  } catch {
    return text;
  }
}

export function parseRawQuery(rawQuery: string): Array<[string, string]> {
  if (rawQuery === '') return [];
  return rawQuery.split('&').map((part) => {
    const eq = part.indexOf('=');
    return eq === -1 ? [decodeComponent(part), ''] : [decodeComponent(part.slice(0, eq)), decodeComponent(part.slice(eq + 1))];
  });
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
const xmlText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startCapturingUpstream(): Promise<CapturingUpstream> {
  let seq = 0;
  const upstream: CapturingUpstream = {
    endpoint: '',
    requests: [],
    onRequest: null,
    buckets: [],
    answerWith: null,
    stop: async () => undefined,
  };

  const server = http.createServer((req, res) => {
    const target = req.url ?? '/';
    const question = target.indexOf('?');
    const rawPath = question === -1 ? target : target.slice(0, question);
    const rawQuery = question === -1 ? '' : target.slice(question + 1);
    const headers: Record<string, string[]> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      (headers[name] ??= []).push(req.rawHeaders[i + 1]!);
    }
    let settle!: () => void;
    const captured: CapturedRequest = {
      seq: ++seq,
      method: (req.method ?? 'GET').toUpperCase(),
      rawPath,
      rawQuery,
      query: parseRawQuery(rawQuery),
      headers,
      body: Buffer.alloc(0),
      complete: false,
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    upstream.requests.push(captured);
    upstream.onRequest?.(captured);

    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      captured.body = Buffer.concat(chunks);
    });
    req.on('error', () => undefined);
    req.on('close', () => settle());
    req.on('end', () => {
      captured.body = Buffer.concat(chunks);
      captured.complete = true;
      settle();
      if (!upstream.answerWith?.(captured, res)) answer(captured, res, upstream.buckets);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  upstream.endpoint = `http://127.0.0.1:${port}`;
  upstream.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

function answer(request: CapturedRequest, res: http.ServerResponse, buckets: string[]): void {
  const names = new Set(request.query.map(([name]) => name));
  const xml = (status: number, body: string, headers: Record<string, string> = {}) => {
    const bytes = Buffer.from(XML_DECLARATION + body);
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(bytes.length), 'x-amz-request-id': `UP${request.seq}`, ...headers });
    res.end(bytes);
  };
  const segments = request.rawPath.split('/');
  const bucket = xmlText(decodeComponent(segments[1] ?? ''));
  const key = xmlText(decodeComponent(segments.slice(2).join('/')));
  switch (request.method) {
    case 'HEAD':
      res.writeHead(200, {
        etag: '"0123456789abcdef0123456789abcdef"',
        'content-length': '0',
        'last-modified': new Date(0).toUTCString(),
        'x-amz-request-id': `UP${request.seq}`,
      });
      res.end();
      return;
    case 'GET':
      if (request.rawPath === '/' || request.rawPath === '') {
        const listed = buckets.map((name) => `<Bucket><Name>${xmlText(name)}</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>`).join('');
        return xml(
          200,
          `<ListAllMyBucketsResult><Owner><ID>upstream-owner</ID><DisplayName>upstream</DisplayName></Owner><Buckets>${listed}</Buckets></ListAllMyBucketsResult>`,
        );
      }
      return xml(
        200,
        `<ListBucketResult><Name>${bucket}</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Owner><ID>upstream-owner</ID><DisplayName>upstream</DisplayName></Owner></ListBucketResult>`,
      );
    case 'POST':
      if (names.has('uploads')) {
        return xml(
          200,
          `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>upload-${request.seq}</UploadId></InitiateMultipartUploadResult>`,
        );
      }
      if (names.has('uploadId')) {
        return xml(
          200,
          `<CompleteMultipartUploadResult><Location>http://upstream/${bucket}/${key}</Location><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>"complete-etag-2"</ETag></CompleteMultipartUploadResult>`,
        );
      }
      return xml(200, '<Result/>');
    case 'PUT':
      res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"', 'content-length': '0', 'x-amz-request-id': `UP${request.seq}` });
      res.end();
      return;
    case 'DELETE':
      res.writeHead(204, { 'x-amz-request-id': `UP${request.seq}` });
      res.end();
      return;
    default:
      res.writeHead(405, { 'content-length': '0' });
      res.end();
  }
}
