/**
 * CompleteMultipartUpload through a real gateway: the body is checked by the gateway (S3 error
 * codes, refused before the upstream sees it, the upload left intact) and a valid body is forwarded
 * byte for byte with the checksums Complete needs. Upstream: moto validating signatures, reached
 * through a pass-through proxy that records what the gateway sent.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListPartsCommand,
  type S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedRequest, startMoto, type SignedResponse, type TestUpstream } from '../helpers/upstreams.js';
import { gatewayS3Client } from '../helpers/sdk.js';

const BUCKET = 'complete-bucket';
const PART_SIZE = 5 * 1024 * 1024;
const xml = new XMLParser({ parseTagValue: false });

describe('CompleteMultipartUpload through the gateway', () => {
  let moto: TestUpstream;
  let proxy: FaultProxy;
  let gateway: Gateway;
  let key: CreatedKey;
  let s3: S3Client;

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket(BUCKET);
    proxy = await startFaultProxy(moto.endpoint);
    gateway = await startGateway({ ...upstreamEnv(moto), KEYGATE_ACCESS_LOG: 'off' });
    await gateway.addBucket({ name: BUCKET, endpoint: proxy.url, region: moto.region });
    key = await gateway.createKey({ name: 'complete', permissions: ['read', 'write'] });
    s3 = gatewayS3Client(gateway.url, key);
  });

  afterAll(async () => {
    s3?.destroy();
    await gateway?.stop();
    await proxy?.close();
    await moto?.stop();
  });

  /** Starts an upload of two parts (5 MiB + a tail) with CRC32 part checksums; returns what Complete needs. */
  async function uploadTwoParts(objectKey: string): Promise<{ uploadId: string; parts: CompletedPart[]; data: Buffer }> {
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: objectKey, ChecksumAlgorithm: 'CRC32' }));
    const uploadId = created.UploadId!;
    const data = randomBytes(PART_SIZE + 1234);
    const parts: CompletedPart[] = [];
    for (const [index, Body] of [data.subarray(0, PART_SIZE), data.subarray(PART_SIZE)].entries()) {
      const PartNumber = index + 1;
      const uploaded = await s3.send(
        new UploadPartCommand({ Bucket: BUCKET, Key: objectKey, UploadId: uploadId, PartNumber, Body, ChecksumAlgorithm: 'CRC32' }),
      );
      parts.push({ PartNumber, ETag: uploaded.ETag!, ChecksumCRC32: uploaded.ChecksumCRC32 });
    }
    return { uploadId, parts, data };
  }

  /** A Complete request signed over its body's SHA-256 (aws4, not the code under test). */
  function sendComplete(objectKey: string, uploadId: string, body: Buffer, headers: Record<string, string> = {}): Promise<SignedResponse> {
    return signedRequest(
      { endpoint: gateway.url, region: key.region, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      'POST',
      `/${BUCKET}/${encodeURIComponent(objectKey)}`,
      { query: `uploadId=${encodeURIComponent(uploadId)}`, body, headers: { 'content-type': 'application/xml', ...headers } },
    );
  }

  function completeBody(parts: CompletedPart[]): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\r\n<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\r\n' +
      parts
        .map(
          (part) =>
            `  <Part>\r\n    <PartNumber>${part.PartNumber}</PartNumber>\r\n    <ETag>${part.ETag!.replaceAll('"', '&quot;')}</ETag>\r\n    <ChecksumCRC32>${part.ChecksumCRC32}</ChecksumCRC32>\r\n  </Part>\r\n`,
        )
        .join('') +
      '</CompleteMultipartUpload>\r\n'
    );
  }

  /** The Complete requests the upstream saw for an upload (clients hold the gateway's form of its id: <upstream id, base64url>.<mac>). */
  function upstreamCompletes(uploadId: string) {
    const upstreamId = Buffer.from(uploadId.split('.')[0]!, 'base64url').toString();
    return proxy.requests.filter((request) => request.method === 'POST' && new URL(request.url, 'http://x').searchParams.get('uploadId') === upstreamId);
  }

  it('refuses malformed bodies with S3 error codes before the upstream sees them, and the upload stays completable', async () => {
    const objectKey = 'checked/refused then completed.bin';
    const { uploadId, parts, data } = await uploadTwoParts(objectKey);
    const [first, second] = parts as [CompletedPart, CompletedPart];
    const cases: Array<{ body: Buffer; code: string; what: string }> = [
      { what: 'parts out of order', code: 'InvalidPartOrder', body: Buffer.from(completeBody([second, first])) },
      { what: 'part number 0', code: 'InvalidArgument', body: Buffer.from(completeBody([{ ...first, PartNumber: 0 }, second])) },
      { what: 'part number 10001', code: 'InvalidArgument', body: Buffer.from(completeBody([first, { ...second, PartNumber: 10_001 }])) },
      { what: 'no parts', code: 'MalformedXML', body: Buffer.from('<CompleteMultipartUpload></CompleteMultipartUpload>') },
      { what: 'not XML', code: 'MalformedXML', body: Buffer.from('{"Parts": [1, 2]}') },
      { what: 'empty body', code: 'MalformedXML', body: Buffer.alloc(0) },
      {
        what: 'a body over the 2 MiB cap',
        code: 'MaxMessageLengthExceeded',
        body: Buffer.from(completeBody(parts).replace('</CompleteMultipartUpload>', `${' '.repeat(2 * 1024 * 1024)}</CompleteMultipartUpload>`)),
      },
    ];
    for (const { what, code, body } of cases) {
      const response = await sendComplete(objectKey, uploadId, body);
      const text = response.body.toString();
      expect(response.status, `${what}: ${text}`).toBe(400);
      const error = (xml.parse(text) as { Error: { Code: string; Message: string; RequestId: string } }).Error;
      expect(error.Code, what).toBe(code);
      expect(error.RequestId, `${what}: answered by the gateway`).toMatch(/^[0-9A-F]{16}$/);
    }
    expect(upstreamCompletes(uploadId), 'no refused Complete reached the upstream').toEqual([]);

    const listed = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: objectKey, UploadId: uploadId }));
    expect(listed.Parts?.map((part) => part.PartNumber)).toEqual([1, 2]);
    const completed = await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: objectKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
    );
    expect(completed.ETag).toMatch(/-2"$/);
    const stored = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey }))).Body!.transformToByteArray());
    expect(stored.equals(data)).toBe(true);
  });

  it('forwards a valid body byte for byte (declaration, namespace, CRLF, part checksums) with its Content-MD5', async () => {
    const objectKey = 'checked/forwarded as sent ✓.bin';
    const { uploadId, parts, data } = await uploadTwoParts(objectKey);
    const body = Buffer.from(completeBody(parts));
    const response = await sendComplete(objectKey, uploadId, body, { 'content-md5': createHash('md5').update(body).digest('base64') });
    expect(response.status, response.body.toString()).toBe(200);
    expect(response.body.toString()).toMatch(/<ETag>(&quot;|")[0-9a-f]{32}-2(&quot;|")<\/ETag>/);

    const forwarded = upstreamCompletes(uploadId);
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]!.bodyBytes).toBe(body.length);
    expect(forwarded[0]!.requestComplete).toBe(true);
    const stored = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey }))).Body!.transformToByteArray());
    expect(stored.equals(data)).toBe(true);
  });
});
