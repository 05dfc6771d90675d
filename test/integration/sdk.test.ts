/**
 * The AWS JS SDK v3 (buffer and stream bodies: the latter arrive as aws-chunked with trailing
 * checksums even over http) and the MinIO JS client (signed streaming chunks) through keygate.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startS3rver, startMoto } from '../helpers/upstreams.js';
import { gatewayMinioClient, gatewayS3Client } from '../helpers/sdk.js';

const BUCKET = 'sdk-bucket';

for (const upstreamKind of ['s3rver', 'moto'] as const) {
  describe(`JS clients through keygate to ${upstreamKind}`, () => {
    let upstream: Awaited<ReturnType<typeof startS3rver>>;
    let gateway: Gateway;
    let key: CreatedKey;
    let s3: S3Client;

    beforeAll(async () => {
      upstream = upstreamKind === 's3rver' ? await startS3rver() : await startMoto({ validateSignatures: true });
      await upstream.createBucket(BUCKET);
      gateway = await startGateway(upstreamEnv(upstream));
      key = await gateway.createKey({ name: 'sdk', permissions: ['read', 'write', 'delete'] });
      s3 = gatewayS3Client(gateway.url, key);
    });

    afterAll(async () => {
      s3?.destroy();
      await gateway?.stop();
      await upstream?.stop();
    });

    it('puts and gets buffer bodies with awkward keys', async () => {
      // s3rver cannot address keys containing '//'; moto can.
      const keys = ['sdk/plain.txt', 'sdk/ünï cödé ✓/x+y=z~.txt', ...(upstreamKind === 'moto' ? ['sdk/a//b'] : [])];
      for (const Key of keys) {
        const Body = Buffer.from(`content of ${Key}`);
        const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body, Metadata: { who: 'sdk' } }));
        expect(put.ETag).toBe(`"${createHash('md5').update(Body).digest('hex')}"`);
        const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
        expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Body)).toBe(true);
        expect(got.Metadata).toEqual({ who: 'sdk' });
      }
    });

    it('streams a body of known length (aws-chunked with a trailing checksum)', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 5);
      await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: 'sdk/stream.bin',
          Body: Readable.from([data.subarray(0, 64 * 1024), data.subarray(64 * 1024)]),
          ContentLength: data.length,
        }),
      );
      // (The SDK sends each piece of a stream as one aws-chunked chunk; S3 and keygate refuse
      // chunks under 8 KiB but the last, see the next test.)
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin' }));
      expect(head.ContentLength).toBe(data.length);
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin', Range: 'bytes=10-19' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data.subarray(10, 20))).toBe(true);
    });

    it('refuses a stream sent in pieces under 8 KiB as S3 does (InvalidChunkSizeError), and takes it with requestStreamBufferSize', async () => {
      const data = randomBytes(64 * 1024);
      const pieces = () => Readable.from(Array.from({ length: 64 }, (_, i) => data.subarray(i * 1024, (i + 1) * 1024)));
      await expect(
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/small-pieces.bin', Body: pieces(), ContentLength: data.length })),
      ).rejects.toMatchObject({
        name: 'InvalidChunkSizeError',
      });
      // The SDK's own remedy: buffer the stream into chunks of at least this size.
      const buffering = new S3Client({
        endpoint: gateway.url,
        forcePathStyle: true,
        region: key.region,
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        maxAttempts: 1,
        requestStreamBufferSize: 65_536,
      });
      await buffering.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/small-pieces.bin', Body: pieces(), ContentLength: data.length }));
      buffering.destroy();
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/small-pieces.bin' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
    });

    it('uploads a stream of unknown length in parts with lib-storage', async () => {
      const data = randomBytes(11 * 1024 * 1024);
      const upload = new Upload({
        client: s3,
        params: { Bucket: BUCKET, Key: 'sdk/multipart ✓.bin', Body: Readable.from([data]) },
        partSize: 5 * 1024 * 1024,
      });
      await upload.done();
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/multipart ✓.bin' }));
      expect(
        createHash('sha256')
          .update(await got.Body!.transformToByteArray())
          .digest('hex'),
      ).toBe(createHash('sha256').update(data).digest('hex'));
    });

    it('copies, lists, deletes one and many', async () => {
      // s3rver decodes x-amz-copy-source with decodeURI, which leaves %2B/%3D encoded; moto decodes it as S3 does.
      const source = upstreamKind === 'moto' ? 'sdk/ünï cödé ✓/x+y=z~.txt' : 'sdk/ünï cödé ✓/plain.txt';
      if (upstreamKind !== 'moto') await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: source, Body: 'copy me' }));
      await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'sdk/copy.txt', CopySource: `${BUCKET}/${encodeURIComponent(source)}` }));
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'sdk/' }));
      const keys = (listed.Contents ?? []).map((o) => o.Key!);
      expect(keys).toContain('sdk/copy.txt');
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'sdk/copy.txt' }));
      const result = await s3.send(
        new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys.filter((k) => k !== 'sdk/copy.txt').map((Key) => ({ Key })) } }),
      );
      expect(result.Errors ?? []).toEqual([]);
      expect((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'sdk/' }))).KeyCount).toBe(0);
    });

    it('rejects a wrong secret with SignatureDoesNotMatch', async () => {
      const bad = gatewayS3Client(gateway.url, key, `${key.secretAccessKey.slice(0, -1)}${key.secretAccessKey.endsWith('0') ? '1' : '0'}`);
      const error = await bad.send(new ListObjectsV2Command({ Bucket: BUCKET })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S3ServiceException);
      expect((error as S3ServiceException).name).toBe('SignatureDoesNotMatch');
      bad.destroy();
    });

    it('works with the MinIO client (signed streaming chunks)', async () => {
      const minio = gatewayMinioClient(gateway.url, key);
      const small = Buffer.from('minio small object');
      await minio.putObject(BUCKET, 'minio/small ✓.txt', small);
      const big = randomBytes(7 * 1024 * 1024);
      await minio.putObject(BUCKET, 'minio/big.bin', Readable.from([big]), big.length, { 'Content-Type': 'application/octet-stream' });
      const stat = await minio.statObject(BUCKET, 'minio/big.bin');
      expect(stat.size).toBe(big.length);
      const chunks: Buffer[] = [];
      for await (const chunk of await minio.getObject(BUCKET, 'minio/small ✓.txt')) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(small)).toBe(true);
      const names: string[] = [];
      for await (const item of minio.listObjectsV2(BUCKET, 'minio/', true)) names.push((item as { name: string }).name);
      expect(names.sort()).toEqual(['minio/big.bin', 'minio/small ✓.txt']);
      await minio.removeObjects(BUCKET, names);
      const left: string[] = [];
      for await (const item of minio.listObjectsV2(BUCKET, 'minio/', true)) left.push((item as { name: string }).name);
      expect(left).toEqual([]);
    });
  });
}
