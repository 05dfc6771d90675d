/**
 * Multipart upload ids are not bound to a bucket by the gateway: it authorizes the bucket in the
 * request path and relies on the upstream to know which bucket an upload id belongs to. This
 * proves, on each upstream kind the tests run, that a key scoped to another bucket cannot use an
 * upload id it learned (or guessed) from a bucket it may not touch.
 */
import { createHash } from 'node:crypto';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';
import { startMoto, startS3rver, type TestUpstream } from '../helpers/upstreams.js';

for (const kind of ['moto', 's3rver'] as const) {
  describe(`upload ids through another bucket (${kind})`, () => {
    let upstream: TestUpstream;
    let gateway: Gateway;
    let owner: CreatedKey;
    let intruder: CreatedKey;

    beforeAll(async () => {
      upstream = kind === 'moto' ? await startMoto() : await startS3rver();
      await upstream.createBucket('bucket-a');
      await upstream.createBucket('bucket-b');
      gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: 'off' });
      owner = await gateway.createKey({ name: 'owner', bucket: 'bucket-a', preset: 'read-write' });
      intruder = await gateway.createKey({ name: 'intruder', bucket: 'bucket-b', preset: 'read-write' });
    });

    afterAll(async () => {
      await gateway?.stop();
      await upstream?.stop();
    });

    async function send(key: CreatedKey, method: string, path: string, body?: string) {
      const url = new URL(gateway.url);
      const bytes = body === undefined ? undefined : Buffer.from(body);
      const headers = signedHeaders(key, url.host, method, path, { body: bytes });
      const response = await undiciRequest(`${gateway.url}${path}`, { method: method as 'PUT', headers, body: bytes });
      return { status: response.statusCode, text: await response.body.text() };
    }

    it("cannot complete another bucket's upload with the owner's parts (no data crosses buckets)", async () => {
      const created = await send(owner, 'POST', '/bucket-a/secret.bin?uploads');
      const uploadId = encodeURIComponent(/<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!);
      const part = 'owner secret part '.repeat(100);
      expect((await send(owner, 'PUT', `/bucket-a/secret.bin?partNumber=1&uploadId=${uploadId}`, part)).status).toBe(200);
      const etag = `"${createHash('md5').update(part).digest('hex')}"`;
      const complete = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`;
      const stolen = await send(intruder, 'POST', `/bucket-b/secret.bin?uploadId=${uploadId}`, complete);
      expect(stolen.status, stolen.text).toBe(404);
      expect(stolen.text).toContain('<Code>NoSuchUpload</Code>');
      expect((await upstream.request('HEAD', '/bucket-b/secret.bin')).status).toBe(404);
    });

    it("cannot add parts to, list, complete or abort another bucket's upload", async () => {
      const created = await send(owner, 'POST', '/bucket-a/shared.bin?uploads');
      expect(created.status, created.text).toBe(200);
      const uploadId = encodeURIComponent(/<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!);
      const part = Buffer.alloc(1024, 'p').toString();

      // Through the victim's bucket: the key's scope stops it.
      expect((await send(intruder, 'PUT', `/bucket-a/shared.bin?partNumber=1&uploadId=${uploadId}`, part)).status).toBe(403);
      // Through its own bucket: the gateway's upload ids are bound to a bucket and key, so this one
      // is no upload there, whatever the upstream would make of it (s3rver accepted such parts).
      const etag = `"${createHash('md5').update(part).digest('hex')}"`;
      const complete = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`;
      for (const [method, path, body] of [
        ['PUT', `/bucket-b/shared.bin?partNumber=1&uploadId=${uploadId}`, part],
        ['POST', `/bucket-b/shared.bin?uploadId=${uploadId}`, complete],
        ['GET', `/bucket-b/shared.bin?uploadId=${uploadId}`, undefined],
        ['DELETE', `/bucket-b/shared.bin?uploadId=${uploadId}`, undefined],
        // Same bucket as the intruder's, another key: not that upload either.
        ['PUT', `/bucket-b/other.bin?partNumber=1&uploadId=${uploadId}`, part],
      ] as const) {
        const answer = await send(intruder, method, path, body);
        expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(404);
        expect(answer.text).toContain('<Code>NoSuchUpload</Code>');
      }
      // Nor is the upstream's own id, which clients never see.
      const raw = await send(
        owner,
        'PUT',
        `/bucket-a/shared.bin?partNumber=1&uploadId=${encodeURIComponent(Buffer.from(decodeURIComponent(uploadId).split('.')[0]!, 'base64url').toString())}`,
        part,
      );
      expect(raw.status, raw.text).toBe(404);

      // The owner's upload is intact and completes with its own part.
      expect((await send(owner, 'PUT', `/bucket-a/shared.bin?partNumber=1&uploadId=${uploadId}`, part)).status).toBe(200);
      const done = await send(owner, 'POST', `/bucket-a/shared.bin?uploadId=${uploadId}`, complete);
      expect(done.status, done.text).toBe(200);
      expect((await upstream.request('HEAD', '/bucket-b/shared.bin')).status).toBe(404);
    });
  });
}

describe('bound upload ids keep ListMultipartUploads paging working', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    upstream = await startMoto();
    await upstream.createBucket('paged');
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: 'off' });
    key = await gateway.createKey({ name: 'pager', bucket: 'paged', preset: 'read-write' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  async function send(method: string, path: string) {
    const url = new URL(gateway.url);
    const response = await undiciRequest(`${gateway.url}${path}`, { method: method as 'GET', headers: signedHeaders(key, url.host, method, path) });
    return { status: response.statusCode, text: await response.body.text() };
  }

  it('pages with key-marker and upload-id-marker, and every listed id aborts its upload', async () => {
    // (No "+" in these keys: moto's encoding-type=url leaves "+" unencoded, so it would read back as a space.)
    const objectKeys = ['a b&c.bin', 'a b&c.bin', 'z/ünï.bin'];
    for (const objectKey of objectKeys) {
      expect((await send('POST', `/paged/${objectKey.split('/').map(encodeURIComponent).join('/')}?uploads`)).status).toBe(200);
    }
    for (const encoding of ['', '&encoding-type=url']) {
      const listed: Array<{ key: string; uploadId: string }> = [];
      let marker = '';
      for (let page = 0; page < 5; page++) {
        const answer = await send('GET', `/paged?uploads&max-uploads=1${encoding}${marker}`);
        expect(answer.status, answer.text).toBe(200);
        for (const [, entry] of answer.text.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)) {
          const rawKey = /<Key>([^<]*)<\/Key>/.exec(entry!)![1]!.replace(/&amp;/g, '&');
          listed.push({ key: encoding ? decodeURIComponent(rawKey.replace(/\+/g, ' ')) : rawKey, uploadId: /<UploadId>([^<]+)<\/UploadId>/.exec(entry!)![1]! });
        }
        if (!answer.text.includes('<IsTruncated>true</IsTruncated>')) break;
        const nextKey = /<NextKeyMarker>([^<]*)<\/NextKeyMarker>/.exec(answer.text)![1]!.replace(/&amp;/g, '&');
        const nextId = /<NextUploadIdMarker>([^<]*)<\/NextUploadIdMarker>/.exec(answer.text)![1]!;
        const keyMarker = encoding ? decodeURIComponent(nextKey.replace(/\+/g, ' ')) : nextKey;
        marker = `&key-marker=${encodeURIComponent(keyMarker)}&upload-id-marker=${encodeURIComponent(nextId)}`;
      }
      expect(listed.map((entry) => entry.key).sort()).toEqual([...objectKeys].sort());
      expect(new Set(listed.map((entry) => entry.uploadId)).size).toBe(3);
      if (encoding) {
        for (const entry of listed) {
          const aborted = await send(
            'DELETE',
            `/paged/${entry.key.split('/').map(encodeURIComponent).join('/')}?uploadId=${encodeURIComponent(entry.uploadId)}`,
          );
          expect(aborted.status, aborted.text).toBe(204);
        }
      }
    }
  });
});
