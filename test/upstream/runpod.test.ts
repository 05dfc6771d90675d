/** RunPod datacenter endpoints and network-volume discovery against a local fake of RunPod's REST API. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  datacenterOfRunpodEndpoint,
  isDatacenterId,
  parseVolumes,
  runpodEndpoint,
  RunpodVolumeDiscovery,
  VolumeDiscoveryError,
} from '../../src/upstream/runpod.js';
import { startLocalServer, type LocalServer } from './fixtures.js';

describe('datacenter endpoints', () => {
  it('derives https://s3api-<lowercase id>.runpod.io for datacenter-shaped ids', () => {
    expect(runpodEndpoint('EU-RO-1', null)?.href).toBe('https://s3api-eu-ro-1.runpod.io/');
    expect(runpodEndpoint('eur-is-1', null)?.href).toBe('https://s3api-eur-is-1.runpod.io/');
    expect(runpodEndpoint('US-KS-2', {})?.href).toBe('https://s3api-us-ks-2.runpod.io/');
    expect(runpodEndpoint('EUR-NO-1', null)?.href).toBe('https://s3api-eur-no-1.runpod.io/');
  });

  it('prefers KEYGATE_RUNPOD_ENDPOINTS overrides (keys are upper case) and rejects other ids', () => {
    const overrides = { 'EU-RO-1': new URL('http://127.0.0.1:5000'), LOCAL: new URL('http://127.0.0.1:5001') };
    expect(runpodEndpoint('eu-ro-1', overrides)?.href).toBe('http://127.0.0.1:5000/');
    expect(runpodEndpoint('local', overrides)?.href).toBe('http://127.0.0.1:5001/');
    expect(runpodEndpoint('not a dc', overrides)).toBeNull();
    expect(runpodEndpoint('EU', null)).toBeNull();
    expect(isDatacenterId('US-CA-2')).toBe(true);
    expect(isDatacenterId('../etc')).toBe(false);
  });

  it('recognizes RunPod endpoints given by URL', () => {
    expect(datacenterOfRunpodEndpoint(new URL('https://s3api-eu-cz-1.runpod.io/'))).toBe('EU-CZ-1');
    expect(datacenterOfRunpodEndpoint(new URL('https://s3.example.com'))).toBeNull();
    expect(datacenterOfRunpodEndpoint(new URL('https://s3api-eu-cz-1.runpod.io.evil.example'))).toBeNull();
  });
});

describe('volume list parsing', () => {
  it('reads the v2 and v1 shapes and skips unusable items', () => {
    expect(
      parseVolumes({ networkVolumes: [{ id: 'v2vol', name: 'models', size: 50, dataCenter: 'eu-ro-1', type: 'STANDARD' }, { name: 'no id' }] }, 'x'),
    ).toEqual([{ id: 'v2vol', name: 'models', sizeGb: 50, datacenter: 'EU-RO-1', createdAt: null }]);
    expect(parseVolumes([{ id: 'v1vol', name: 'data', size: 10, dataCenterId: 'US-KS-2', createdAt: '2025-06-01T10:00:00Z' }, { id: 'nodc' }], 'x')).toEqual([
      { id: 'v1vol', name: 'data', sizeGb: 10, datacenter: 'US-KS-2', createdAt: new Date('2025-06-01T10:00:00Z') },
    ]);
    expect(parseVolumes({ networkVolumes: [{ id: 'obj', dataCenter: { id: 'EU-CZ-1', name: 'Czechia' } }] }, 'x')[0]?.datacenter).toBe('EU-CZ-1');
    expect(() => parseVolumes({ error: 'nope' }, 'src')).toThrow(VolumeDiscoveryError);
  });
});

describe('RunpodVolumeDiscovery against a local REST server', () => {
  let server: LocalServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const V2_BODY = { networkVolumes: [{ id: 'abc123', name: 'models', size: 100, dataCenter: 'EU-RO-1', type: 'STANDARD' }] };

  /** A REST fake answering with `respond(index)` -> [status, json]. */
  async function restServer(respond: (index: number, url: string) => [number, unknown] | 'hang'): Promise<LocalServer> {
    server = await startLocalServer((req, res, _body, index) => {
      const answer = respond(index, req.url ?? '');
      if (answer === 'hang') return;
      res.writeHead(answer[0], { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer[1]));
    });
    return server;
  }

  function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
    let time = start;
    return { now: () => time, advance: (ms) => void (time += ms) };
  }

  it('lists v2 volumes with the Bearer key and serves lookups from cache until the TTL passes', async () => {
    const rest = await restServer(() => [200, V2_BODY]);
    const time = clock();
    const discovery = new RunpodVolumeDiscovery({
      restUrl: `${rest.url}/v2/`,
      apiKey: 'rp-key',
      now: time.now,
      cacheTtlMs: 60_000,
      minRefreshIntervalMs: 1000,
    });
    // RunPod gives no creation time here: the volume dates from when the gateway first listed it (never 1970).
    expect(await discovery.find('abc123')).toEqual({ id: 'abc123', name: 'models', sizeGb: 100, datacenter: 'EU-RO-1', createdAt: new Date(time.now()) });
    expect(await discovery.find('ABC123')).toMatchObject({ id: 'abc123' });
    expect(await discovery.list()).toHaveLength(1);
    expect(rest.requests).toHaveLength(1);
    expect(rest.requests[0]).toMatchObject({ method: 'GET', url: '/v2/network-volumes' });
    expect(rest.requests[0]!.headers.authorization).toBe('Bearer rp-key');

    const firstListed = (await discovery.list())[0]!.createdAt;
    time.advance(60_000);
    const relisted = await discovery.list();
    expect(rest.requests).toHaveLength(2);
    expect(relisted[0]!.createdAt).toEqual(firstListed);
  });

  it('uses GET /networkvolumes and the array shape when the base URL ends in /v1', async () => {
    const rest = await restServer(() => [200, [{ id: 'v1vol', name: 'old', size: 5, dataCenterId: 'US-KS-2' }]]);
    const discovery = new RunpodVolumeDiscovery({ restUrl: `${rest.url}/v1`, apiKey: 'k' });
    expect(await discovery.find('v1vol')).toMatchObject({ datacenter: 'US-KS-2' });
    expect(rest.requests[0]!.url).toBe('/v1/networkvolumes');
  });

  it('refreshes on a miss, but at most once per interval however many unknown names arrive', async () => {
    let volumes = [{ id: 'first', dataCenter: 'EU-RO-1' }];
    const rest = await restServer(() => [200, { networkVolumes: volumes }]);
    const time = clock();
    const discovery = new RunpodVolumeDiscovery({ restUrl: rest.url, apiKey: 'k', now: time.now, minRefreshIntervalMs: 30_000 });
    expect(await discovery.find('first')).not.toBeNull();
    expect(rest.requests).toHaveLength(1);

    // A flood of random names right after the listing: no further calls.
    const misses = await Promise.all(Array.from({ length: 50 }, (_, i) => discovery.find(`random-${i}`)));
    expect(misses.every((m) => m === null)).toBe(true);
    expect(rest.requests).toHaveLength(1);

    // A new volume appears; the next miss after the interval picks it up with one call.
    volumes = [...volumes, { id: 'second', dataCenter: 'US-CA-2' }];
    time.advance(30_000);
    const [a, b] = await Promise.all([discovery.find('second'), discovery.find('second')]);
    expect(a).toMatchObject({ datacenter: 'US-CA-2' });
    expect(b).toMatchObject({ datacenter: 'US-CA-2' });
    expect(rest.requests).toHaveLength(2);
  });

  it('keeps the last good listing when a refresh fails, logging once per failure streak', async () => {
    let failing = false;
    const rest = await restServer(() => (failing ? [500, { error: 'boom' }] : [200, V2_BODY]));
    const time = clock();
    const logs: Array<Record<string, unknown>> = [];
    const discovery = new RunpodVolumeDiscovery({
      restUrl: rest.url,
      apiKey: 'k',
      now: time.now,
      cacheTtlMs: 1000,
      minRefreshIntervalMs: 1000,
      log: (e) => logs.push(e),
    });
    await discovery.list();
    failing = true;
    for (let i = 0; i < 3; i++) {
      time.advance(1000);
      expect(await discovery.find('abc123')).toMatchObject({ datacenter: 'EU-RO-1' });
    }
    expect(rest.requests).toHaveLength(4);
    expect(logs).toHaveLength(1);
    expect(String(logs[0]!.error)).toContain('HTTP 500');
    expect(JSON.stringify(logs)).not.toContain('Bearer');

    failing = false;
    time.advance(1000);
    await discovery.list();
    expect(logs).toHaveLength(2);
    expect(logs[1]!.msg).toContain('recovered');
  });

  it('reports a rejected API key with what to do, instead of "no such bucket"', async () => {
    const rest = await restServer(() => [401, { error: 'unauthorized' }]);
    const discovery = new RunpodVolumeDiscovery({ restUrl: rest.url, apiKey: 'bad', log: () => {} });
    const error = await discovery.find('abc123').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VolumeDiscoveryError);
    expect((error as Error).message).toMatch(/rejected RUNPOD_API_KEY \(HTTP 401\).*set RUNPOD_API_KEY/);
    // Within the rate-limit interval the same failure is reported without calling again.
    await expect(discovery.list()).rejects.toThrow(/RUNPOD_API_KEY/);
    expect(rest.requests).toHaveLength(1);
  });

  it('gives up after the timeout when the API does not answer', async () => {
    const rest = await restServer(() => 'hang');
    const discovery = new RunpodVolumeDiscovery({ restUrl: rest.url, apiKey: 'k', timeoutMs: 200, log: () => {} });
    const started = Date.now();
    await expect(discovery.fetchVolumes()).rejects.toThrow(/timed out/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reports an unreachable API with the URL to check', async () => {
    const rest = await restServer(() => [200, V2_BODY]);
    const url = rest.url;
    await rest.close();
    server = undefined;
    const discovery = new RunpodVolumeDiscovery({ restUrl: url, apiKey: 'k' });
    await expect(discovery.fetchVolumes()).rejects.toThrow(new RegExp(`Could not reach the RunPod REST API at ${url}/network-volumes \\(ECONNREFUSED\\)`));
  });
});
