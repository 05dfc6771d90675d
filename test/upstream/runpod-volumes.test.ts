/**
 * Creating and deleting RunPod network volumes through the REST API (src/upstream/runpod-volumes.ts),
 * against a local fake of RunPod's REST API: the exact calls (v2 and v1), and every way a call can
 * fail, each reported with what happened, whether RunPod may have acted anyway, and never the API
 * key or RunPod's answer as it came.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { quotedMessage, RunpodRestError, RunpodVolumeApi, type RunpodRestFailure } from '../../src/upstream/runpod-volumes.js';
import { startFakeRunpodRest, type FakeRunpodRest } from '../helpers/fake-runpod-rest.js';
import { freePort } from '../helpers/ports.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const API_KEY = 'rpa_volumes_test_key_0123456789';

let s3: TestUpstream;
let rest: FakeRunpodRest;

beforeAll(async () => {
  s3 = await startS3rver();
  rest = await startFakeRunpodRest({ apiKey: API_KEY, datacenters: { 'EU-RO-1': s3, 'US-KS-2': s3 } });
});
afterAll(async () => {
  await rest?.stop();
  await s3?.stop();
});
beforeEach(() => {
  rest.calls.length = 0;
});

function api(version: 'v1' | 'v2' = 'v2', timeoutMs?: number, apiKey = API_KEY): RunpodVolumeApi {
  return new RunpodVolumeApi({ restUrl: `${rest.url}/${version}`, apiKey, timeoutMs });
}

async function failureOf(promise: Promise<unknown>): Promise<RunpodRestError> {
  const error = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunpodRestError);
  const failure = error as RunpodRestError;
  // Whatever failed, the key is in no message.
  expect(failure.message).not.toContain(API_KEY);
  expect(failure.details.runpodMessage ?? '').not.toContain(API_KEY);
  return failure;
}

describe('creating a volume', () => {
  it('v2: POST {base}/network-volumes with {name, size, dataCenter} and the Bearer key; reads the id', async () => {
    const volume = await api('v2').createVolume({ name: 'team-data', sizeGb: 25, datacenter: 'EU-RO-1' });
    expect(volume.id).toMatch(/^kgv[0-9a-f]{10}$/);
    expect(volume.datacenter).toBe('EU-RO-1');
    expect(rest.calls).toHaveLength(1);
    const [call] = rest.calls;
    expect(call).toMatchObject({ method: 'POST', path: '/v2/network-volumes', authorization: `Bearer ${API_KEY}` });
    expect(call!.headers['content-type']).toBe('application/json');
    expect(call!.body).toEqual({ name: 'team-data', size: 25, dataCenter: 'EU-RO-1' });
    // The fake made the volume's bucket on the datacenter's S3.
    expect((await s3.request('HEAD', `/${volume.id}`)).status).toBe(200);
  });

  it('v1 (a base URL ending in /v1): POST {base}/networkvolumes with {name, size, dataCenterId}', async () => {
    expect(api('v1').version).toBe('v1');
    const volume = await api('v1').createVolume({ name: 'old-api', sizeGb: 10, datacenter: 'US-KS-2' });
    expect(volume.datacenter).toBe('US-KS-2');
    expect(rest.calls[0]).toMatchObject({ method: 'POST', path: '/v1/networkvolumes', body: { name: 'old-api', size: 10, dataCenterId: 'US-KS-2' } });
  });

  it.each([
    ['a 401 that echoes the key', { status: 401, json: { error: `invalid api key ${API_KEY}` } }, 'unauthorized', false],
    ['a 403', { status: 403, json: { message: 'forbidden' } }, 'unauthorized', false],
    ['a 400 about the datacenter', { status: 400, json: { error: 'invalid data center id: EU-RO-1' } }, 'rejected', false],
    ['a 404', { status: 404, json: { error: 'not found' } }, 'not_found', false],
    ['a 429', { status: 429, json: { error: 'slow down' }, headers: { 'retry-after': '7' } }, 'rate_limited', false],
    ['a 500', { status: 500, json: { error: 'internal' } }, 'server_error', true],
    ['a 502 HTML page', { status: 502, raw: '<html><body>Bad gateway</body></html>' }, 'server_error', true],
    ['a 201 that is not JSON', { status: 201, raw: '{"id": "abc' }, 'bad_response', true],
    ['a 201 without an id', { status: 201, json: { name: 'x', dataCenter: 'EU-RO-1' } }, 'bad_response', true],
    ['a 201 whose id is a path segment', { status: 201, json: { id: '..', dataCenter: 'EU-RO-1' } }, 'bad_response', true],
    ['a 201 whose id has a slash', { status: 201, json: { id: 'a/../b' } }, 'bad_response', true],
    ['a 201 larger than 64 KiB', { status: 201, raw: JSON.stringify({ id: 'big', pad: 'x'.repeat(70_000) }) }, 'bad_response', true],
    ['a redirect (not followed)', { status: 302, headers: { location: 'http://127.0.0.1:1/' } }, 'bad_response', true],
  ] as const)('%s', async (_what, answer, failure: RunpodRestFailure, mayHaveActed) => {
    rest.failNext('POST', answer);
    const error = await failureOf(api().createVolume({ name: 'x', sizeGb: 10, datacenter: 'EU-RO-1' }));
    expect(error.failure).toBe(failure);
    expect(error.details).toMatchObject({ call: 'POST /v2/network-volumes', status: answer.status, mayHaveActed });
    if (failure === 'rate_limited') expect(error.details.retryAfterSeconds).toBe(7);
  });

  it("quotes RunPod's message short and clean, never its whole answer", async () => {
    rest.failNext('POST', {
      status: 400,
      json: { error: { message: `size too large\u0000\n\u001b[31m for ${API_KEY} ${'word '.repeat(100)}` }, trace: 'secret internal stack' },
    });
    const error = await failureOf(api().createVolume({ name: 'x', sizeGb: 4096, datacenter: 'EU-RO-1' }));
    const quoted = error.details.runpodMessage!;
    expect(quoted.startsWith('size too large [31m for [redacted] word')).toBe(true);
    expect(quoted.length).toBeLessThanOrEqual(160);
    expect(quoted.endsWith('…')).toBe(true);
    // eslint-disable-next-line no-control-regex -- checking control characters are gone
    expect(quoted).not.toMatch(/[\u0000-\u001F]/);
    expect(error.message).not.toContain('secret internal stack');
  });

  it('times out a RunPod that does not answer: RunPod may have acted', async () => {
    rest.failNext('POST', { status: 0, hang: true });
    const started = Date.now();
    const error = await failureOf(api('v2', 300).createVolume({ name: 'x', sizeGb: 10, datacenter: 'EU-RO-1' }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.failure).toBe('timeout');
    expect(error.details).toMatchObject({ status: null, mayHaveActed: true });
  });

  it('reports a REST API nobody listens on as unreachable: nothing was sent', async () => {
    const closed = new RunpodVolumeApi({ restUrl: `http://127.0.0.1:${await freePort()}/v2`, apiKey: API_KEY });
    const error = await failureOf(closed.createVolume({ name: 'x', sizeGb: 10, datacenter: 'EU-RO-1' }));
    expect(error.failure).toBe('unreachable');
    expect(error.details.mayHaveActed).toBe(false);
  });
});

describe('deleting a volume', () => {
  it('v2: DELETE {base}/network-volumes/{id}; v1: DELETE {base}/networkvolumes/{id}', async () => {
    const v2 = await api('v2').createVolume({ name: 'a', sizeGb: 10, datacenter: 'EU-RO-1' });
    const v1 = await api('v1').createVolume({ name: 'b', sizeGb: 10, datacenter: 'EU-RO-1' });
    rest.calls.length = 0;
    expect(await api('v2').deleteVolume(v2.id)).toBe('deleted');
    expect(await api('v1').deleteVolume(v1.id)).toBe('deleted');
    expect(rest.calls.map((call) => `${call.method} ${call.path} ${call.authorization}`)).toEqual([
      `DELETE /v2/network-volumes/${v2.id} Bearer ${API_KEY}`,
      `DELETE /v1/networkvolumes/${v1.id} Bearer ${API_KEY}`,
    ]);
    expect(rest.volumes.has(v2.id)).toBe(false);
    expect((await s3.request('HEAD', `/${v1.id}`)).status).toBe(404);
  });

  it("a 404 means gone only when the account's volume list agrees", async () => {
    expect(await api().deleteVolume('kgvgone000000')).toBe('not_found');
    expect(rest.calls.map((call) => `${call.method} ${call.path}`)).toEqual(['DELETE /v2/network-volumes/kgvgone000000', 'GET /v2/network-volumes']);

    const kept = await api().createVolume({ name: 'kept', sizeGb: 10, datacenter: 'EU-RO-1' });
    rest.failNext('DELETE', { status: 404, json: { error: 'not found' } });
    expect((await failureOf(api().deleteVolume(kept.id))).failure).toBe('rejected');
    expect(rest.volumes.has(kept.id)).toBe(true);
  });

  it('a base URL that answers 404 to everything is reported, not taken for a deleted volume', async () => {
    const wrong = new RunpodVolumeApi({ restUrl: `${rest.url}/v9`, apiKey: API_KEY });
    const error = await failureOf(wrong.deleteVolume('kgvsomething00'));
    expect(error.failure).toBe('not_found');
    expect(error.details.call).toBe('GET /v9/network-volumes');
  });

  it('maps refusals like creation does', async () => {
    rest.failNext('DELETE', { status: 409, json: { message: 'volume is attached to pod abc' } });
    const error = await failureOf(api().deleteVolume('kgvinuse00000'));
    expect(error).toMatchObject({ failure: 'rejected', details: { status: 409, runpodMessage: 'volume is attached to pod abc' } });
    const refused = await failureOf(api('v2', undefined, 'rpa_wrong_key').deleteVolume('kgvx'));
    expect(refused.failure).toBe('unauthorized');
    expect(refused.details.runpodMessage).toBe('invalid api key [redacted]');
  });
});

describe('quotedMessage', () => {
  it('reads message, error, error.message, errors[0] and detail; null for anything else', () => {
    expect(quotedMessage('{"message":"a"}', 'k')).toBe('a');
    expect(quotedMessage('{"error":"b"}', 'k')).toBe('b');
    expect(quotedMessage('{"error":{"message":"c"}}', 'k')).toBe('c');
    expect(quotedMessage('{"errors":[{"message":"d"}]}', 'k')).toBe('d');
    expect(quotedMessage('{"errors":["e"]}', 'k')).toBe('e');
    expect(quotedMessage('{"detail":"f"}', 'k')).toBe('f');
    expect(quotedMessage('<html>', 'k')).toBeNull();
    expect(quotedMessage('[1,2]', 'k')).toBeNull();
    expect(quotedMessage('{"message":"   "}', 'k')).toBeNull();
    expect(quotedMessage('{"message":"say \\"hi\\" to rpa_key"}', 'rpa_key')).toBe('say hi to [redacted]');
  });
});
