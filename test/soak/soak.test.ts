/**
 * Load soak (issue 5, hardening): a real gateway process in front of a real s3rver serves mixed S3
 * traffic from KEYGATE_SOAK_CONCURRENCY workers (default 64) for KEYGATE_SOAK_SECONDS (default
 * 300) while keys are deleted mid-run through the admin API and through the CLI (another process
 * writing the same SQLite file). It asserts:
 * - zero requests accepted with a key after its deletion completed (and that such requests were
 *   made, for every deleted key), while other keys keep succeeding right after each deletion;
 * - no 5xx, no client-side failures, no scope breach, every GET/HEAD/listing matching what was stored;
 * - no growth trend in the gateway's RSS (see memory-trend.ts for the criterion);
 * - the gateway is alive at the end and kept last_used_at current.
 * docs/soak.md explains how to run it longer or shorter.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { Ledger } from './ledger.js';
import { RSS_GROWTH_TOLERANCE_BYTES, rssTrend, type RssSample } from './memory-trend.js';
import { SignedClient } from './signed-client.js';
import { deleteKeyWithCli, processAlive, processRss, startS3rverProcess, type UpstreamProcess } from './support.js';
import { BUCKETS, KeyRing, ROLES, SdkClients, TrafficWorker, makeContent, rotate, type RoleSpec } from './traffic.js';

const SECONDS = positiveNumberFromEnv('KEYGATE_SOAK_SECONDS', 300);
const CONCURRENCY = Math.round(positiveNumberFromEnv('KEYGATE_SOAK_CONCURRENCY', 64));
/** Key deletions spread evenly over the run, alternating admin API and CLI. */
const ROTATIONS = 6;
/** Workers keep sending with a deleted key this long before they are handed its replacement. */
const STALE_KEY_LINGER_MS = 750;
/** Reading /proc is cheap: sample often so the thirds' means average out GC noise (short runs: >= 30 samples). */
const RSS_SAMPLE_INTERVAL_MS = Math.min(2_000, (SECONDS * 1000) / 30);
/**
 * For a full-length run the criterion must be able to see a leak of a few KB per request; shorter
 * runs (development smoke runs) serve too few requests between the thirds for that guarantee.
 */
const REQUIRED_LEAK_SENSITIVITY_BYTES = 4 * 1024;
const SENSITIVITY_ENFORCED_FROM_SECONDS = 240;
/** lastUsedAt is written at most once a minute per key (src/store/keys.ts). */
const LAST_USED_WRITE_INTERVAL_MS = 60_000;
const MB = 1024 * 1024;

function positiveNumberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}="${raw}" is not a positive number; unset it for the default ${fallback}.`);
  return value;
}

let upstream: UpstreamProcess;
let gateway: Gateway;
const initialKeys = new Map<string, CreatedKey>();
let unusedKey: CreatedKey;

function createRoleKey(role: RoleSpec, generation: number): Promise<CreatedKey> {
  return gateway.createKey({ name: `soak-${role.name}-g${generation}`, bucket: role.bucket ?? undefined, permissions: role.permissions });
}

beforeAll(async () => {
  upstream = await startS3rverProcess();
  for (const bucket of BUCKETS) await upstream.createBucket(bucket);
  gateway = await startGateway(upstreamEnv(upstream));
  for (const role of ROLES) initialKeys.set(role.name, await createRoleKey(role, 0));
  unusedKey = await gateway.createKey({ name: 'soak-never-used', permissions: ['read'] });
});

afterAll(async () => {
  await gateway?.stop();
  await upstream?.stop();
});

it(
  `stays correct and flat under ${CONCURRENCY} concurrent workers for ${SECONDS} s with keys revoked mid-run`,
  async () => {
    const ledger = new Ledger();
    const keys = new KeyRing(initialKeys);
    const client = new SignedClient(gateway.url, CONCURRENCY);
    const sdk = new SdkClients(gateway.url, 16);
    const traffic = { client, sdk, ledger, keys, content: makeContent() };
    const workers = Array.from({ length: CONCURRENCY }, (_, id) => new TrafficWorker(id, traffic));

    const samples: RssSample[] = [];
    const upstreamRss: number[] = [];
    const sample = () => {
      samples.push({ at: performance.now(), rss: gateway.rss(), requests: ledger.requests });
      upstreamRss.push(processRss(upstream.pid));
    };
    const startedWall = Date.now();
    const start = performance.now();
    const until = start + SECONDS * 1000;
    sample();
    const sampler = setInterval(sample, RSS_SAMPLE_INTERVAL_MS);
    const progress = setInterval(() => {
      const elapsed = (performance.now() - start) / 1000;
      console.log(
        `soak ${elapsed.toFixed(0)}s: ${ledger.requests} requests, ${ledger.violationCount} violations, gateway RSS ${(gateway.rss() / MB).toFixed(1)} MB`,
      );
    }, 60_000);

    const rotationLog: Array<{ role: string; method: string; deleteMs: number }> = [];
    const rotations = (async () => {
      const rotating = ROLES.filter((role) => role.rotates);
      for (let n = 1; n <= ROTATIONS; n++) {
        const at = start + (n / (ROTATIONS + 1)) * SECONDS * 1000;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
        const role = rotating[(n - 1) % rotating.length]!;
        const method = n % 2 === 0 ? 'cli' : 'admin-api';
        const began = performance.now();
        await rotate(
          {
            keys,
            ledger,
            createKey: createRoleKey,
            deleteKey: (id, how) => (how === 'cli' ? deleteKeyWithCli(gateway, id) : gateway.deleteKey(id)),
            lingerMs: STALE_KEY_LINGER_MS,
          },
          role,
          method,
          n,
        );
        const revocation = ledger.revocations.get(keys.revoked.at(-1)!.accessKeyId)!;
        rotationLog.push({ role: role.name, method, deleteMs: revocation.completedAt! - began });
      }
    })();

    try {
      await Promise.all([...workers.map((worker) => worker.run(until)), rotations]);
    } finally {
      clearInterval(sampler);
      clearInterval(progress);
    }
    sample();
    const trafficSeconds = (performance.now() - start) / 1000;
    const endedWall = Date.now();
    const trafficRequests = ledger.requests;

    // The model of every prefix against what the upstream really holds, through the gateway.
    await Promise.all(workers.map((worker) => worker.verifyFinalState()));

    const health = await fetch(`${gateway.url}/_health`).then(
      (response) => response.status,
      (error: Error) => `unreachable: ${error.message}`,
    );
    const alive = processAlive(gateway.pid);
    const steady = await gateway.admin('GET', `/v1/keys/${keys.key('steady').accessKeyId}`);
    const unused = await gateway.admin('GET', `/v1/keys/${unusedKey.accessKeyId}`);
    const revokedLookups = await Promise.all(keys.revoked.map((key) => gateway.admin('GET', `/v1/keys/${key.accessKeyId}`).then((r) => r.status)));
    await client.close();
    sdk.destroy();

    const trend = rssTrend(samples, RSS_GROWTH_TOLERANCE_BYTES);
    const rssValues = samples.map((s) => s.rss);
    const summary = [
      `soak summary: ${trafficRequests} requests in ${trafficSeconds.toFixed(1)} s = ${(trafficRequests / trafficSeconds).toFixed(0)} req/s at concurrency ${CONCURRENCY}`,
      `  outcomes: ${[...ledger.categories].map(([category, count]) => `${category}=${count}`).join(', ')}`,
      `  statuses: ${[...ledger.statuses]
        .sort(([a], [b]) => a - b)
        .map(([status, count]) => `${status}=${count}`)
        .join(', ')}`,
      `  operations: ${[...ledger.operations]
        .sort(([, a], [, b]) => b - a)
        .map(([operation, count]) => `${operation}=${count}`)
        .join(', ')}`,
      `  revocations: ${[...ledger.revocations.values()]
        .map(
          (r, i) =>
            `${r.role} via ${r.method} (deleted in ${rotationLog[i]?.deleteMs.toFixed(0)} ms; ${r.probedAfter} later requests with it, ${r.othersSucceededAfter} successes by other keys in the next 5 s)`,
        )
        .join('; ')}`,
      `  gateway RSS MB: first ${(rssValues[0]! / MB).toFixed(1)}, last ${(rssValues.at(-1)! / MB).toFixed(1)}, max ${(Math.max(...rssValues) / MB).toFixed(1)}; ` +
        `middle-third mean ${(trend.middleMeanBytes / MB).toFixed(1)}, last-third mean ${(trend.lastMeanBytes / MB).toFixed(1)} ` +
        `(growth ${(trend.growthBytes / MB).toFixed(1)} MB, tolerance ${(trend.toleranceBytes / MB).toFixed(0)} MB, ` +
        `detects leaks >= ${trend.detectableLeakBytesPerRequest.toFixed(0)} B/request; second-half slope ${(trend.secondHalfSlopeBytesPerSecond / 1024).toFixed(1)} KiB/s)`,
      `  upstream (s3rver) RSS MB: first ${(upstreamRss[0]! / MB).toFixed(1)}, last ${(upstreamRss.at(-1)! / MB).toFixed(1)}`,
      `  gateway RSS samples MB: ${rssValues.map((v) => (v / MB).toFixed(0)).join(' ')}`,
    ].join('\n');
    console.log(summary);

    const violationReport = ledger.violations
      .map((v) => `  ${v.category}: ${v.operation} -> ${v.status} ${v.errorCode ?? ''} ${v.detail} [${v.accessKeyId}]`)
      .join('\n');
    expect(ledger.violationCount, `violations (first ${ledger.violations.length}):\n${violationReport}`).toBe(0);
    expect(health, 'the gateway must still answer /_health after the soak').toBe(200);
    expect(alive, 'the gateway process must still be running after the soak').toBe(true);

    // The run did what it claims: every deletion happened mid-traffic, was probed afterwards, and
    // did not stop other keys; scope denials and successes were both exercised in bulk.
    expect(ledger.revocations.size).toBe(ROTATIONS);
    expect(rotationLog.filter((r) => r.method === 'cli').length).toBeGreaterThan(0);
    for (const revocation of ledger.revocations.values()) {
      expect(revocation.probedAfter, `requests with ${revocation.role}'s key after its deletion via ${revocation.method}`).toBeGreaterThan(0);
      expect(revocation.othersSucceededAfter, `other keys' successes within 5 s after ${revocation.role}'s deletion`).toBeGreaterThan(0);
    }
    expect(ledger.count('refused-after-revocation')).toBeGreaterThan(0);
    expect(ledger.count('denied-by-scope')).toBeGreaterThan(0);
    expect(ledger.count('success')).toBeGreaterThan(ledger.requests / 2);
    expect(revokedLookups, 'GET /v1/keys/:id of every deleted key').toEqual(keys.revoked.map(() => 404));

    expect(
      trend.growing,
      `gateway RSS grew ${(trend.growthBytes / MB).toFixed(1)} MB between the middle and last thirds of the run (tolerance ${RSS_GROWTH_TOLERANCE_BYTES / MB} MB)`,
    ).toBe(false);
    if (SECONDS >= SENSITIVITY_ENFORCED_FROM_SECONDS) {
      expect(trend.detectableLeakBytesPerRequest, 'too few requests for the memory criterion to catch a leak of a few KB per request').toBeLessThanOrEqual(
        REQUIRED_LEAK_SENSITIVITY_BYTES,
      );
    }

    expect(steady.status).toBe(200);
    const lastUsedAt = Date.parse(steady.json.lastUsedAt);
    expect(lastUsedAt, 'steady key lastUsedAt must fall within the run').toBeGreaterThanOrEqual(startedWall - 1000);
    expect(lastUsedAt, 'steady key lastUsedAt must be kept current (written at most once a minute)').toBeGreaterThanOrEqual(
      endedWall - LAST_USED_WRITE_INTERVAL_MS - 15_000,
    );
    expect(unused.json.lastUsedAt, 'a key never used keeps lastUsedAt null').toBeNull();
  },
  (SECONDS + 300) * 1000,
);
