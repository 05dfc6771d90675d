/**
 * A request refused before its body was read (unknown key, bad signature, no permission) must
 * still reach the client as an S3 error, not as a reset connection: clients that send the body
 * without Expect: 100-continue are still writing when the answer goes out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedRequest, startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'refusals';

describe('refusing an upload while its body is arriving', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let reader: CreatedKey;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: 'off' });
    reader = await gateway.createKey({ name: 'reader', bucket: BUCKET, preset: 'read-only' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  const credentials = (secretAccessKey: string) => ({ endpoint: gateway.url, region: reader.region, accessKeyId: reader.accessKeyId, secretAccessKey });

  it.each([
    ['a wrong secret', 'SignatureDoesNotMatch', () => credentials(`${reader.secretAccessKey}x`)],
    ['a key without write', 'AccessDenied', () => credentials(reader.secretAccessKey)],
  ])('answers %s with %s every time, for bodies up to several MiB', async (_, code, who) => {
    for (const size of [256 * 1024, 1024 * 1024, 6 * 1024 * 1024]) {
      const body = Buffer.alloc(size, 'b');
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          signedRequest(who(), 'PUT', `/${BUCKET}/refused-${size}-${i}`, { body }).then(
            (response) => `${response.status} ${/<Code>(\w+)<\/Code>/.exec(response.body.toString())?.[1]}`,
            (error: Error & { code?: string }) => `transport error ${error.code ?? error.message}`,
          ),
        ),
      );
      expect(answers, `${size} bytes`).toEqual(Array.from({ length: 8 }, () => `403 ${code}`));
    }
    const listed = await upstream.request('GET', `/${BUCKET}?list-type=2`);
    expect(listed.body.toString()).not.toContain('refused-');
  });
});
