/**
 * XML request bodies must not hold the event loop (finding 3 of the attacker review: one 2 MB
 * CompleteMultipartUpload body blocked it for 8 s). Runs in the "load" group, alone: the gateway
 * measures its own event loop delay, which other suites' CPU load on a 2-core machine would inflate.
 */
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';

const MINE = 'mine-bucket';

describe('XML bodies and the event loop', () => {
  let moto: TestUpstream;
  let gateway: Gateway;
  let readWrite: CreatedKey;

  beforeAll(async () => {
    moto = await startMoto();
    await moto.createBucket(MINE);
    gateway = await startGateway({ ...upstreamEnv(moto), KEYGATE_ACCESS_LOG: 'off' });
    readWrite = await gateway.createKey({ name: 'read-write', permissions: ['read', 'write'] });
  });

  afterAll(async () => {
    await gateway?.stop();
    await moto?.stop();
  });

  async function send(key: CreatedKey, method: string, path: string, options: { body?: string } = {}): Promise<{ status: number; text: string }> {
    const url = new URL(gateway.url);
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const headers = signedHeaders(key, url.host, method, path, { body });
    const response = await undiciRequest(`${gateway.url}${path}`, { method: method as 'GET', headers, body });
    return { status: response.statusCode, text: await response.body.text() };
  }

  const codeOf = (answer: { text: string }) => /<Code>([^<]+)<\/Code>/.exec(answer.text)?.[1];

  /** The gateway's own event loop delay since the previous call (its /metrics, from monitorEventLoopDelay). */
  async function eventLoopDelay(): Promise<{ p99Ms: number; maxMs: number }> {
    const response = await fetch(`${gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${gateway.adminToken}` } });
    const text = await response.text();
    const value = (name: string) => Number(new RegExp(`^keygate_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1]) * 1000;
    return { p99Ms: value('p99'), maxMs: value('max') };
  }

  it('keeps the event loop free (max delay < 100 ms) during three concurrent 2 MB CompleteMultipartUpload bodies', async () => {
    // 10,000 parts (the most S3 allows), padded with comments to 2 MB. The last part is out of
    // order, so the body is read to its end and then refused (InvalidPartOrder) by the gateway.
    const parts = Array.from(
      { length: 10_000 },
      (_, i) => `<Part><PartNumber>${i === 9_999 ? 1 : i + 1}</PartNumber><ETag>"${'0'.repeat(32)}"</ETag></Part><!--${'.'.repeat(108)}-->`,
    );
    const body = `<CompleteMultipartUpload>${parts.join('')}</CompleteMultipartUpload>`;
    expect(body.length).toBeGreaterThan(2_000_000);
    expect(body.length).toBeLessThan(2 * 1024 * 1024);
    // The gateway measures its own event loop delay (perf_hooks.monitorEventLoopDelay, reset at
    // every scrape of /metrics): scrape once to start a fresh window, once after the load.
    await eventLoopDelay();
    let healthAnswers = 0;
    let busy = true;
    const probe = (async () => {
      while (busy) {
        const health = await fetch(`${gateway.url}/_health`);
        if (health.status === 200) healthAnswers++;
        await health.text();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    // Real uploads: an upload id the gateway did not issue for this key is refused before the body is read.
    const uploadIds = await Promise.all(
      Array.from({ length: 3 }, async (_, i) => {
        const created = await send(readWrite, 'POST', `/${MINE}/big-${i}.bin?uploads`);
        return encodeURIComponent(/<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!);
      }),
    );
    const uploads = await Promise.all(uploadIds.map((uploadId, i) => send(readWrite, 'POST', `/${MINE}/big-${i}.bin?uploadId=${uploadId}`, { body })));
    busy = false;
    await probe;
    for (const upload of uploads) expect(codeOf(upload), upload.text).toBe('InvalidPartOrder');
    const delay = await eventLoopDelay();
    expect(healthAnswers).toBeGreaterThan(3);
    // Before the XML reader was rebuilt, one such body held the loop for 8 s.
    expect(delay.maxMs, `event loop delay during the load: p99 ${delay.p99Ms} ms, max ${delay.maxMs} ms`).toBeLessThan(100);
  });
});
