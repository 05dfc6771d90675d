/** The test servers themselves: they start, validate what they claim to validate, and clean up. */
import { existsSync } from 'node:fs';
import aws4 from 'aws4';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { signedRequest, startMoto, startS3rver, type TestUpstream } from '../helpers/upstreams.js';

/** Signs `signedPath` but sends `sentPath`; returns the status. */
async function signedRequestWithTarget(upstream: TestUpstream, signedPath: string, sentPath: string): Promise<number> {
  const url = new URL(upstream.endpoint);
  const signed = aws4.sign(
    { service: 's3', region: upstream.region, method: 'GET', host: url.hostname, port: Number(url.port), path: signedPath, doNotEncodePath: true },
    upstream,
  );
  const response = await request(`${url.origin}${sentPath}`, { method: 'GET', headers: signed.headers as Record<string, string> });
  await response.body.dump();
  return response.statusCode;
}

describe('moto harness', () => {
  it('with validateSignatures, accepts its own key and rejects a wrong secret or an unknown key', async () => {
    const moto = await startMoto({ validateSignatures: true });
    try {
      await moto.createBucket('validated');
      expect((await moto.request('PUT', '/validated/k', { body: 'v' })).status).toBe(200);

      const wrongSecret = await signedRequest({ ...moto, secretAccessKey: `${moto.secretAccessKey}x` }, 'GET', '/validated/k');
      expect(wrongSecret.status).toBe(403);
      expect(wrongSecret.body.toString()).toContain('SignatureDoesNotMatch');

      const unknownKey = await signedRequest({ ...moto, accessKeyId: 'AKIAUNKNOWNUNKNOWN00' }, 'GET', '/validated/k');
      expect(unknownKey.status).toBe(403);

      const good = await moto.request('GET', '/validated/k');
      expect(good.status).toBe(200);
      expect(good.body.toString()).toBe('v');

      // Thanks to the raw-URI patch, correctly signed awkward keys and '/' in queries validate too.
      expect((await moto.request('PUT', '/validated/uni%20%E2%9C%93%2B%25/x', { body: 'u' })).status).toBe(200);
      const listed = await moto.request('GET', '/validated', { query: 'list-type=2&prefix=uni%20%E2%9C%93%2B%25%2F' });
      expect(listed.status).toBe(200);
      expect(listed.body.toString()).toContain('<Key>uni ✓+%/x</Key>');
      // …while a signature over a different encoding of the same key is still refused.
      const signedOther = await signedRequestWithTarget(moto, '/validated/uni%20%E2%9C%93%2B%25/x', '/validated/uni+%E2%9C%93%2B%25/x');
      expect(signedOther).toBe(403);
    } finally {
      await moto.stop();
    }
  });

  it('without validation, accepts any signature; stop() ends the process', async () => {
    const moto = await startMoto();
    await moto.createBucket('open-bucket');
    const anySecret = await signedRequest({ ...moto, secretAccessKey: 'whatever' }, 'PUT', '/open-bucket/k', { body: 'v' });
    expect(anySecret.status).toBe(200);
    await moto.stop();
    await expect(moto.request('GET', '/open-bucket/k')).rejects.toThrow();
  });
});

describe('s3rver harness', () => {
  it('stores objects, needs its access key id, and removes its directory on stop', async () => {
    const s3rver = await startS3rver();
    await s3rver.createBucket('s3rver-bucket');
    expect((await s3rver.request('PUT', '/s3rver-bucket/k', { body: 'v' })).status).toBe(200);
    expect((await s3rver.request('GET', '/s3rver-bucket/k')).body.toString()).toBe('v');
    const unknownKey = await signedRequest({ ...s3rver, accessKeyId: 'NOBODY' }, 'GET', '/s3rver-bucket/k');
    expect(unknownKey.status).toBe(403);
    expect(s3rver.capabilityOverrides).toEqual({ trailingChecksums: false });

    expect(existsSync(s3rver.directory!)).toBe(true);
    await s3rver.stop();
    await expect(s3rver.request('GET', '/s3rver-bucket/k')).rejects.toThrow();
    expect(existsSync(s3rver.directory!)).toBe(false);
  });
});
