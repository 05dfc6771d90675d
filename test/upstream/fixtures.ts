/**
 * Small helpers shared by the upstream tests: targets for test servers, request bodies, a logger
 * that keeps what it is given, local HTTP servers, stream reading.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { LogFields, Logger, LogLevel } from '../../src/observability/log.js';
import type { UpstreamBody } from '../../src/upstream/forward.js';
import { GENERIC_S3_CAPABILITIES, type UpstreamCapabilities, type UpstreamTarget } from '../../src/upstream/target.js';
import type { TestUpstream } from '../helpers/upstreams.js';

/** A generic S3 target for a test server, with the capabilities the server lacks turned off. */
export function targetFor(
  upstream: Pick<TestUpstream, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'> & Partial<Pick<TestUpstream, 'capabilityOverrides'>>,
  bucket: string,
  capabilities: Partial<UpstreamCapabilities> = {},
): UpstreamTarget {
  return {
    kind: 's3',
    endpoint: new URL(upstream.endpoint),
    region: upstream.region,
    bucket,
    credentials: { accessKeyId: upstream.accessKeyId, secretAccessKey: upstream.secretAccessKey },
    datacenter: null,
    capabilities: { ...GENERIC_S3_CAPABILITIES, ...upstream.capabilityOverrides, ...capabilities },
  };
}

export interface BodyOptions {
  /** Declared (decoded) length; defaults to the length of a Buffer given as data. */
  length?: number;
  sha256?: string | null;
  contentMd5?: string;
  /** Verified checksums, as the verifier knows them once the stream ended. */
  checksums?: Record<string, string>;
  /** The checksum the client sent as a trailer. */
  trailerChecksum?: string | null;
}

/** A verified request body as the HTTP layer hands it to the forwarder. */
export function upstreamBody(data: Buffer | Readable, options: BodyOptions = {}): UpstreamBody {
  const length = options.length ?? (Buffer.isBuffer(data) ? data.length : undefined);
  if (length === undefined) throw new Error('upstreamBody: a stream needs an explicit length');
  const checksums = options.checksums ?? {};
  return {
    stream: Buffer.isBuffer(data) ? Readable.from(data.length === 0 ? [] : [data]) : data,
    length,
    sha256: options.sha256 ?? null,
    ...(options.contentMd5 === undefined ? {} : { contentMd5: options.contentMd5 }),
    checksums: () => checksums,
    trailerChecksum: options.trailerChecksum ?? null,
  };
}

export interface LogEntry {
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** A Logger that keeps every entry, for tests that look at what the operator would read. */
export function capturingLog(): { log: Logger; entries: LogEntry[]; find: (msg: string) => LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    log: (level, msg, fields = {}) => void entries.push({ level, msg, fields }),
    entries,
    find: (msg) => entries.filter((entry) => entry.msg === msg),
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

export async function readText(stream: Readable): Promise<string> {
  return (await readAll(stream)).toString('utf8');
}

export interface LocalServer {
  url: string;
  port: number;
  /** Requests seen so far, in order. */
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer; aborted: boolean }>;
  close(): Promise<void>;
}

/**
 * A real node:http server on loopback for failure scenarios no S3 server produces on demand.
 * The handler gets the request with its body already read (unless `streamBody` is set).
 */
export async function startLocalServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: Buffer, index: number) => void | Promise<void>,
  options: { streamBody?: boolean } = {},
): Promise<LocalServer> {
  const requests: LocalServer['requests'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const index = requests.length;
    const record = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0), aborted: false };
    requests.push(record);
    req.on('aborted', () => (record.aborted = true));
    req.on('error', () => (record.aborted = true));
    if (options.streamBody) {
      void Promise.resolve(handler(req, res, Buffer.alloc(0), index)).catch(() => res.destroy());
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      void Promise.resolve(handler(req, res, record.body, index)).catch(() => res.destroy());
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A Readable of `size` deterministic bytes produced lazily in `chunkSize` pieces (never held whole). */
export function generatedBody(size: number, chunkSize = 64 * 1024, seed = 7): Readable {
  let produced = 0;
  return new Readable({
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const length = Math.min(chunkSize, size - produced);
      const chunk = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) chunk[i] = (produced + i + seed) & 0xff;
      produced += length;
      this.push(chunk);
    },
  });
}
