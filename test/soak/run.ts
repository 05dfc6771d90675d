/**
 * The soak's run, shared by its modes (soak.test.ts): one gateway on its SQLite store, or several
 * gateway instances on one PostgreSQL store. Either way there is one upstream, one Ledger judging
 * every answer and one KeyRing; worker i talks to instance i % n through that instance's own
 * clients, and keys are deleted mid-run the ways the deployment offers (admin API, CLI).
 *
 * It asserts, for every instance:
 * - zero requests accepted with a key after its deletion completed, whichever instance or process
 *   deleted it (the ledger judges every request against every deletion), and that each deleted key
 *   was tried on each instance after its deletion (at least the request sent to every instance
 *   right after the deletion returned), while other keys keep succeeding right after it;
 * - no 5xx, no client-side failures, no scope breach, every GET/HEAD/listing matching what was
 *   stored, and every worker's prefix holding exactly its model at the end;
 * - no growth trend in the instance's RSS (see memory-trend.ts for the criterion);
 * - the instance is alive at the end, and the store it reads kept last_used_at current.
 */
import { expect } from 'vitest';
import type { CreatedKey, Gateway } from '../helpers/gateway.js';
import { Ledger, type Category, type Revocation } from './ledger.js';
import { RSS_GROWTH_TOLERANCE_BYTES, rssTrend, type RssSample, type TrendVerdict } from './memory-trend.js';
import { ClientError, SignedClient } from './signed-client.js';
import { processAlive, processRss, type UpstreamProcess } from './support.js';
import { KeyRing, ROLES, SdkClients, TrafficWorker, makeContent, rotate, type RoleSpec } from './traffic.js';

export type RevocationMethod = Revocation['method'];

/** What a run drives: started by deployments.ts, stopped by the test's afterAll. */
export interface SoakDeployment {
  /** One gateway, or several instances sharing one key store. */
  instances: Gateway[];
  upstream: UpstreamProcess;
  /** Creates a role's key (through some instance's admin API). */
  createKey(role: RoleSpec, generation: number): Promise<CreatedKey>;
  /** Deletes a key the given way; resolves, once the deletion returned, with how it was done (for the summary). */
  deleteKey(accessKeyId: string, method: RevocationMethod): Promise<string>;
  /** Each role's key at the start. */
  initialKeys: ReadonlyMap<string, CreatedKey>;
  /** A key no request ever uses: its lastUsedAt must stay null. */
  unusedKey: CreatedKey;
  stop(): Promise<void>;
}

export interface SoakRunOptions {
  /** Starts every summary line's first line and the progress lines: 'soak', 'soak (3 instances)'. */
  title: string;
  seconds: number;
  concurrency: number;
  /** Sockets of each instance's AWS SDK agent. */
  sdkSocketsPerInstance: number;
}

/** Key deletions spread evenly over the run, alternating admin API and CLI. */
export const ROTATIONS = 6;
/** Workers keep sending with a deleted key this long before they are handed its replacement. */
const STALE_KEY_LINGER_MS = 750;
/**
 * For a full-length run the criterion must be able to see a leak of a few KB per request; shorter
 * runs (development smoke runs) serve too few requests between the thirds for that guarantee.
 */
const REQUIRED_LEAK_SENSITIVITY_BYTES = 4 * 1024;
export const SENSITIVITY_ENFORCED_FROM_SECONDS = 240;
/** lastUsedAt is written at most once a minute per key (and per instance: src/store/store.ts). */
const LAST_USED_WRITE_INTERVAL_MS = 60_000;
/** Prefix nobody stores under: listing it with a deleted key changes nothing whatever the answer. */
const REVOCATION_PROBE_PREFIX = 'revocation-probe/';
const MB = 1024 * 1024;

export function positiveNumberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}="${raw}" is not a positive number; unset it for the default ${fallback}.`);
  return value;
}

interface RotationRecord {
  role: string;
  method: RevocationMethod;
  /** How the deployment did it, e.g. 'admin-api of instance 2'. */
  via: string;
  deleteMs: number;
  /** Category of the request sent to each instance right after the deletion returned. */
  nextRequests: Category[];
}

export async function runSoak(deployment: SoakDeployment, options: SoakRunOptions): Promise<void> {
  const { instances, upstream } = deployment;
  const { title, seconds, concurrency } = options;
  const count = instances.length;
  const label = (instance: number) => (count === 1 ? 'gateway' : `instance ${instance + 1}`);
  /** Reading /proc is cheap: sample often so the thirds' means average out GC noise (short runs: >= 30 samples). */
  const rssSampleIntervalMs = Math.min(2_000, (seconds * 1000) / 30);

  const ledger = new Ledger();
  const keys = new KeyRing(deployment.initialKeys);
  const content = makeContent();
  const clients = instances.map((instance) => new SignedClient(instance.url, Math.ceil(concurrency / count)));
  const sdks = instances.map((instance) => new SdkClients(instance.url, options.sdkSocketsPerInstance));
  const workers = Array.from(
    { length: concurrency },
    (_, id) => new TrafficWorker(id, { client: clients[id % count]!, sdk: sdks[id % count]!, ledger, keys, content, instance: id % count }),
  );

  const samples: RssSample[][] = instances.map(() => []);
  const upstreamRss: number[] = [];
  const sample = () => {
    const at = performance.now();
    instances.forEach((instance, i) => samples[i]!.push({ at, rss: instance.rss(), requests: ledger.requestsOn(i) }));
    upstreamRss.push(processRss(upstream.pid));
  };
  const startedWall = Date.now();
  const start = performance.now();
  const until = start + seconds * 1000;
  sample();
  const sampler = setInterval(sample, rssSampleIntervalMs);
  const progress = setInterval(() => {
    const elapsed = (performance.now() - start) / 1000;
    const rss = instances.map((instance, i) => `${label(i)} RSS ${(instance.rss() / MB).toFixed(1)} MB`).join(', ');
    console.log(`${title} ${elapsed.toFixed(0)}s: ${ledger.requests} requests, ${ledger.violationCount} violations, ${rss}`);
  }, 60_000);

  const rotationLog: RotationRecord[] = [];
  const rotations = (async () => {
    const rotating = ROLES.filter((role) => role.rotates);
    for (let n = 1; n <= ROTATIONS; n++) {
      const at = start + (n / (ROTATIONS + 1)) * seconds * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
      const role = rotating[(n - 1) % rotating.length]!;
      const method: RevocationMethod = n % 2 === 0 ? 'cli' : 'admin-api';
      let via: string = method;
      let nextRequests: Category[] = [];
      const began = performance.now();
      await rotate(
        {
          keys,
          ledger,
          createKey: (rotatedRole, generation) => deployment.createKey(rotatedRole, generation),
          deleteKey: async (id, how) => {
            via = await deployment.deleteKey(id, how);
          },
          // The very next request with the deleted key, on every instance (the traffic keeps trying it too).
          afterDeletion: async (revoked, revokedRole) => {
            nextRequests = await Promise.all(clients.map((client, instance) => probeRevokedKey(ledger, client, instance, revoked, revokedRole)));
          },
          lingerMs: STALE_KEY_LINGER_MS,
        },
        role,
        method,
        n,
      );
      const revocation = ledger.revocations.get(keys.revoked.at(-1)!.accessKeyId)!;
      rotationLog.push({ role: role.name, method, via, deleteMs: revocation.completedAt! - began, nextRequests });
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
  const trafficRequestsByInstance = instances.map((_, i) => ledger.requestsOn(i));

  // The model of every prefix against what the upstream really holds, through the gateway.
  await Promise.all(workers.map((worker) => worker.verifyFinalState()));

  const health = await Promise.all(
    instances.map((instance) =>
      fetch(`${instance.url}/_health`).then(
        (response) => response.status,
        (error: Error) => `unreachable: ${error.message}`,
      ),
    ),
  );
  const alive = instances.map((instance) => processAlive(instance.pid));
  const lookup = (id: string) => Promise.all(instances.map((instance) => instance.admin('GET', `/v1/keys/${id}`)));
  const steady = await lookup(keys.key('steady').accessKeyId);
  const unused = await lookup(deployment.unusedKey.accessKeyId);
  const revokedLookups = await Promise.all(keys.revoked.map(async (key) => (await lookup(key.accessKeyId)).map((r) => r.status)));
  await Promise.all(clients.map((client) => client.close()));
  for (const sdk of sdks) sdk.destroy();

  const trends = samples.map((series) => rssTrend(series, RSS_GROWTH_TOLERANCE_BYTES));
  const perInstance = (values: number[]) => (count === 1 ? String(values[0]) : values.map((value, i) => `${value} on ${i + 1}`).join(', '));
  const summary = [
    `${title} summary: ${trafficRequests} requests in ${trafficSeconds.toFixed(1)} s = ${(trafficRequests / trafficSeconds).toFixed(0)} req/s at concurrency ${concurrency}` +
      (count === 1 ? '' : ` over ${count} instances (${trafficRequestsByInstance.map((n, i) => `${label(i)}: ${n}`).join(', ')})`),
    `  outcomes: ${[...ledger.categories].map(([category, n]) => `${category}=${n}`).join(', ')}`,
    `  statuses: ${[...ledger.statuses]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}=${n}`)
      .join(', ')}`,
    `  operations: ${[...ledger.operations]
      .sort(([, a], [, b]) => b - a)
      .map(([operation, n]) => `${operation}=${n}`)
      .join(', ')}`,
    `  revocations: ${[...ledger.revocations.values()]
      .map((r, i) => {
        const record = rotationLog[i];
        const probed = perInstance(instances.map((_, instance) => r.probedAfterByInstance.get(instance) ?? 0));
        const next = record?.nextRequests.every((category) => category === 'refused-after-revocation')
          ? 'refused'
          : `answered ${record?.nextRequests.join('/')}`;
        const nextOn = count === 1 ? `next request ${next}` : `next request on every instance ${next}`;
        return (
          `${r.role} via ${record?.via ?? r.method} (deleted in ${record?.deleteMs.toFixed(0)} ms; ${nextOn}; ${probed} later requests with it, ` +
          `${r.othersSucceededAfter} successes by other keys in the next 5 s)`
        );
      })
      .join('; ')}`,
    ...instances.map((_, i) => rssLine(label(i), samples[i]!, trends[i]!)),
    `  upstream (s3rver) RSS MB: first ${(upstreamRss[0]! / MB).toFixed(1)}, last ${(upstreamRss.at(-1)! / MB).toFixed(1)}`,
    ...instances.map((_, i) => `  ${label(i)} RSS samples MB: ${samples[i]!.map((s) => (s.rss / MB).toFixed(0)).join(' ')}`),
  ].join('\n');
  console.log(summary);

  const violationReport = ledger.violations
    .map((v) => `  ${v.category}: ${v.operation} -> ${v.status} ${v.errorCode ?? ''} ${v.detail} [${v.accessKeyId}]`)
    .join('\n');
  expect(ledger.violationCount, `violations (first ${ledger.violations.length}):\n${violationReport}`).toBe(0);
  expect(health, 'every instance must still answer /_health after the soak').toEqual(instances.map(() => 200));
  expect(alive, 'every instance process must still be running after the soak').toEqual(instances.map(() => true));

  // The run did what it claims: every deletion happened mid-traffic, was probed afterwards on every
  // instance, and did not stop other keys; scope denials and successes were both exercised in bulk.
  expect(ledger.revocations.size).toBe(ROTATIONS);
  expect(rotationLog.filter((r) => r.method === 'cli').length).toBeGreaterThan(0);
  for (const revocation of ledger.revocations.values()) {
    for (const [i] of instances.entries()) {
      expect(
        revocation.probedAfterByInstance.get(i) ?? 0,
        `requests to ${label(i)} with ${revocation.role}'s key after its deletion via ${revocation.method}`,
      ).toBeGreaterThan(0);
    }
    expect(revocation.othersSucceededAfter, `other keys' successes within 5 s after ${revocation.role}'s deletion`).toBeGreaterThan(0);
  }
  for (const record of rotationLog) {
    expect(record.nextRequests, `the request to each instance right after ${record.role}'s key was deleted via ${record.via}`).toEqual(
      instances.map(() => 'refused-after-revocation'),
    );
  }
  for (const [i] of instances.entries()) expect(trafficRequestsByInstance[i], `requests served by ${label(i)}`).toBeGreaterThan(0);
  expect(ledger.count('refused-after-revocation')).toBeGreaterThan(0);
  expect(ledger.count('denied-by-scope')).toBeGreaterThan(0);
  expect(ledger.count('success')).toBeGreaterThan(ledger.requests / 2);
  expect(revokedLookups, 'GET /v1/keys/:id of every deleted key, on every instance').toEqual(keys.revoked.map(() => instances.map(() => 404)));

  for (const [i, trend] of trends.entries()) {
    expect(
      trend.growing,
      `${label(i)} RSS grew ${(trend.growthBytes / MB).toFixed(1)} MB between the middle and last thirds of the run (tolerance ${RSS_GROWTH_TOLERANCE_BYTES / MB} MB)`,
    ).toBe(false);
    if (seconds >= SENSITIVITY_ENFORCED_FROM_SECONDS) {
      expect(
        trend.detectableLeakBytesPerRequest,
        `too few requests to ${label(i)} for the memory criterion to catch a leak of a few KB per request`,
      ).toBeLessThanOrEqual(REQUIRED_LEAK_SENSITIVITY_BYTES);
    }
  }

  for (const [i, answer] of steady.entries()) {
    expect(answer.status).toBe(200);
    const lastUsedAt = Date.parse(answer.json.lastUsedAt);
    expect(lastUsedAt, `steady key lastUsedAt (read through ${label(i)}) must fall within the run`).toBeGreaterThanOrEqual(startedWall - 1000);
    expect(lastUsedAt, `steady key lastUsedAt (read through ${label(i)}) must be kept current (written at most once a minute)`).toBeGreaterThanOrEqual(
      endedWall - LAST_USED_WRITE_INTERVAL_MS - 15_000,
    );
  }
  for (const [i, answer] of unused.entries()) {
    expect(answer.json.lastUsedAt, `a key never used keeps lastUsedAt null (read through ${label(i)})`).toBeNull();
  }
}

function rssLine(label: string, samples: RssSample[], trend: TrendVerdict): string {
  const values = samples.map((s) => s.rss);
  return (
    `  ${label} RSS MB: first ${(values[0]! / MB).toFixed(1)}, last ${(values.at(-1)! / MB).toFixed(1)}, max ${(Math.max(...values) / MB).toFixed(1)}; ` +
    `middle-third mean ${(trend.middleMeanBytes / MB).toFixed(1)}, last-third mean ${(trend.lastMeanBytes / MB).toFixed(1)} ` +
    `(growth ${(trend.growthBytes / MB).toFixed(1)} MB, tolerance ${(trend.toleranceBytes / MB).toFixed(0)} MB, ` +
    `detects leaks >= ${trend.detectableLeakBytesPerRequest.toFixed(0)} B/request; second-half slope ${(trend.secondHalfSlopeBytesPerSecond / 1024).toFixed(1)} KiB/s)`
  );
}

/**
 * One ListObjectsV2 with a just-deleted key on one instance, judged by the ledger like any other
 * request (it started after the deletion returned, so anything but 403 InvalidAccessKeyId is a
 * violation). Returns its category.
 */
async function probeRevokedKey(ledger: Ledger, client: SignedClient, instance: number, key: CreatedKey, role: RoleSpec): Promise<Category> {
  const operation = 'ListObjectsV2(revoked key, next request)';
  const bucket = role.bucket ?? 'soak-a';
  try {
    const result = await client.send(
      { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: key.region },
      { method: 'GET', bucket, query: { 'list-type': '2', prefix: REVOCATION_PROBE_PREFIX } },
    );
    return ledger.judge({
      accessKeyId: key.accessKeyId,
      operation,
      expectation: 'success',
      status: result.status,
      errorCode: result.errorCode,
      startedAt: result.startedAt,
      endedAt: result.endedAt,
      target: `GET ${bucket}?list-type=2&prefix=${REVOCATION_PROBE_PREFIX}`,
      instance,
    }).category;
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    ledger.clientError(operation, key.accessKeyId, error.message, instance);
    return 'VIOLATION client-error';
  }
}
