/**
 * Real client libraries against a minimal in-process server that only runs verifyRequest and the
 * payload verifier: what @aws-sdk/client-s3 (header auth, aws-chunked + trailing checksums for stream
 * bodies, presigned URLs) and minio-js put on the wire must verify and decode to the bytes they sent.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type ChecksumAlgorithm } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import * as Minio from 'minio';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { createPayloadVerifier } from '../../src/sigv4/payload.js';
import { verifyRequest } from '../../src/sigv4/verify.js';
import type { PayloadMode } from '../../src/sigv4/types.js';
import { lookupFor } from './helpers.js';

const KEY_ID = 'rs_ak_live_sdkclients';
const SECRET = 'rs_sk_live_sdkclients_secret';

interface Seen {
  method: string;
  url: string;
  payload: PayloadMode;
  body: Buffer;
  checksums: Record<string, string>;
  headers: IncomingMessage['headers'];
}

const seen: Seen[] = [];
let server: Server;
let endpoint: string;
let port: number;

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  try {
    const verified = verifyRequest(
      { method: req.method ?? 'GET', rawPath: q < 0 ? url : url.slice(0, q), rawQuery: q < 0 ? '' : url.slice(q + 1), headers: req.headers },
      { lookup: lookupFor({ [KEY_ID]: SECRET }), regions: ['auto', 'us-east-1'], debug: true },
    );
    const verifier = createPayloadVerifier(verified, req.headers);
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      verifier.on('data', (c: Buffer) => chunks.push(c));
      verifier.on('end', resolve);
      verifier.on('error', reject);
      req.on('error', reject);
      req.pipe(verifier);
    });
    seen.push({ method: req.method!, url, payload: verified.payload, body: Buffer.concat(chunks), checksums: { ...verifier.checksums }, headers: req.headers });
  } catch (error) {
    const e = error instanceof S3Error ? error : new S3Error('InternalError', String(error));
    req.resume();
    res.writeHead(e.status, { 'content-type': 'application/xml' }).end(e.toXml(url, 'test'));
    return;
  }
  if (req.method === 'GET' && url.includes('list-type=2')) {
    res
      .writeHead(200, { 'content-type': 'application/xml' })
      .end(
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>',
      );
  } else if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', etag: '"5d41402abc4b2a76b9719d911017c592"' }).end('hello');
  } else {
    res.writeHead(200, { etag: '"00000000000000000000000000000000"', 'content-length': '0' }).end();
  }
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function client(): S3Client {
  return new S3Client({ endpoint, region: 'auto', forcePathStyle: true, credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET } });
}

const AWKWARD_KEY = "dir//a b+c=d&e~é😀(1)!'*;,$@:.txt";

function last(): Seen {
  return seen[seen.length - 1]!;
}

describe('@aws-sdk/client-s3', () => {
  it('PutObject with a Buffer body', async () => {
    const body = Buffer.from('buffer body '.repeat(100));
    await client().send(new PutObjectCommand({ Bucket: 'bucket', Key: AWKWARD_KEY, Body: body }));
    expect(last().body.equals(body)).toBe(true);
    // The SDK sends the flexible checksum as a header for in-memory bodies; it was verified.
    expect(Object.keys(last().checksums)).toEqual(['x-amz-checksum-crc32']);
  });

  it.each<ChecksumAlgorithm | undefined>([undefined, 'CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'])(
    'PutObject with a stream body (aws-chunked, trailing %s)',
    async (algorithm) => {
      const data = Buffer.alloc(200_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
      const pieces = [data.subarray(0, 70_000), data.subarray(70_000, 140_001), data.subarray(140_001)];
      await client().send(
        new PutObjectCommand({ Bucket: 'bucket', Key: AWKWARD_KEY, Body: Readable.from(pieces), ContentLength: data.length, ChecksumAlgorithm: algorithm }),
      );
      const request = last();
      expect(request.payload.kind).toBe('streaming-unsigned-trailer');
      expect(request.body.equals(data)).toBe(true);
      const name = `x-amz-checksum-${(algorithm ?? 'CRC32').toLowerCase()}`;
      expect(Object.keys(request.checksums)).toEqual([name]);
    },
  );

  it('a wrong secret or unknown key is refused with the S3 error the SDK understands', async () => {
    const wrong = new S3Client({
      endpoint,
      region: 'auto',
      forcePathStyle: true,
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET + 'x' },
      maxAttempts: 1,
    });
    await expect(wrong.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: 'x' }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    const unknown = new S3Client({
      endpoint,
      region: 'auto',
      forcePathStyle: true,
      credentials: { accessKeyId: 'rs_ak_live_nobody', secretAccessKey: SECRET },
      maxAttempts: 1,
    });
    await expect(unknown.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'k' }))).rejects.toMatchObject({ name: 'InvalidAccessKeyId' });
  });

  it('GetObject with a Range and ListObjectsV2 with an awkward prefix', async () => {
    const got = await client().send(new GetObjectCommand({ Bucket: 'bucket', Key: AWKWARD_KEY, Range: 'bytes=0-4' }));
    expect(await got.Body?.transformToString()).toBe('hello');
    await client().send(new ListObjectsV2Command({ Bucket: 'bucket', Prefix: "a b+c/é😀=&?#%!'()*", Delimiter: '/', MaxKeys: 7 }));
    expect(last().url).toContain('list-type=2');
  });

  it('presigned GET and PUT URLs (getSignedUrl)', async () => {
    for (const command of [new GetObjectCommand({ Bucket: 'bucket', Key: AWKWARD_KEY }), new PutObjectCommand({ Bucket: 'bucket', Key: AWKWARD_KEY })]) {
      const url = new URL(await getSignedUrl(client(), command, { expiresIn: 300 }));
      const method = command instanceof GetObjectCommand ? 'GET' : 'PUT';
      const status = await new Promise<number>((resolve, reject) => {
        const r = httpRequest({ host: '127.0.0.1', port, method, path: url.pathname + url.search }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        r.on('error', reject);
        r.end(method === 'PUT' ? 'uploaded via presigned URL' : undefined);
      });
      expect(status).toBe(200);
      expect(last().payload).toEqual({ kind: 'unsigned' });
      if (method === 'PUT') expect(last().body.toString()).toBe('uploaded via presigned URL');
    }
  });
});

describe('minio-js', () => {
  const minio = () =>
    new Minio.Client({ endPoint: '127.0.0.1', port, useSSL: false, accessKey: KEY_ID, secretKey: SECRET, region: 'us-east-1', pathStyle: true });

  it('putObject / getObject / presignedGetObject', async () => {
    const data = Buffer.from('minio says hi '.repeat(50));
    await minio().putObject('bucket', AWKWARD_KEY, data, data.length);
    expect(last().body.equals(data)).toBe(true);
    expect(last().payload.kind).toBe('signed'); // minio-js signs the body's sha256 over plain http
    const stream = await minio().getObject('bucket', AWKWARD_KEY);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    const url = new URL(await minio().presignedGetObject('bucket', AWKWARD_KEY, 600));
    const status = await new Promise<number>((resolve, reject) => {
      const r = httpRequest({ host: '127.0.0.1', port, path: url.pathname + url.search }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', reject);
      r.end();
    });
    expect(status).toBe(200);
  });
});
