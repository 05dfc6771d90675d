/**
 * End-to-end benchmarks against real processes, side by side in one run: the gateway, the same
 * upstream hit directly, nginx proxying to that upstream without auth, the node floor (a bare
 * node:http + undici pass-through, bench/node-floor.mjs) and, for small requests, the signing floor
 * (the node floor plus the gateway's SigV4 verification and aws4 re-signing, bench/signing-floor.mjs).
 * Unless told not to, a second gateway with
 * the PostgreSQL store (KEYGATE_DATABASE_URL, a throwaway server: bench/postgres.ts) takes part in
 * the small requests too, with the PostgreSQL server's own CPU and the store's change-id reads per
 * request counted over the same windows.
 *
 * Small requests: HEAD/GET of 1 KiB objects at concurrency 32, each target for the same time,
 * repeated in rounds with the target order rotated (the two cores are shared, so a target measured
 * right after another pays for its leftovers); the median round is reported, and each proxy's own
 * CPU per request per round, read from /proc over the measured window.
 * Large objects: one PUT and one GET of a generated object per target and round; the gateway's
 * peak RSS (VmHWM) is reset before and read after the transfers. The PostgreSQL-store gateway sits
 * them out: its store is looked up once per request, not per byte.
 */
import { getObject, putObject, type TransferResult } from './large.js';
import { runClosedLoop, type LoadResult } from './load.js';
import {
  cpuSecondsOf,
  memoryOf,
  resetPeakRss,
  S3RVER_CREDENTIALS,
  startGateway,
  startNginx,
  startNodeFloor,
  startSigningFloor,
  startS3rverUpstream,
  UPSTREAM_REGION,
  type BenchProcess,
  type GatewayProcess,
  type Upstream,
} from './processes.js';
import { startBenchPostgres, type BenchPostgres, type StoreStatements } from './postgres.js';
import { presignUrl } from '../src/sigv4/sign.js';

export const BUCKET = 'bench';
export const SMALL_OBJECT_BYTES = 1024;
const SMALL_OBJECT_COUNT = 64;
/** Presigned URLs are made once and must outlive the run. */
const URL_LIFETIME_SECONDS = 3 * 3600;

/** 'gateway' keeps its keys in SQLite (the default); 'gateway-pg' in PostgreSQL (KEYGATE_DATABASE_URL). */
export type GatewayName = 'gateway' | 'gateway-pg';
export type ProxyName = 'nginx' | 'node-floor' | 'signing-floor' | GatewayName;
export type TargetName = 'direct' | ProxyName;
/** Small requests: every target (gateway-pg unless the PostgreSQL store is left out). */
export const TARGETS: readonly TargetName[] = ['direct', 'nginx', 'node-floor', 'signing-floor', 'gateway', 'gateway-pg'];
/** Large objects: the PostgreSQL store changes nothing per byte carried. */
export const LARGE_TARGETS = ['direct', 'nginx', 'node-floor', 'gateway'] as const;
export type LargeProxyName = Exclude<(typeof LARGE_TARGETS)[number], 'direct'>;
export const LARGE_PROXIES: readonly LargeProxyName[] = ['nginx', 'node-floor', 'gateway'];
/** How the report names a target. */
export const TARGET_LABELS: Record<TargetName, string> = {
  direct: 'direct',
  nginx: 'nginx',
  'node-floor': 'node-floor',
  'signing-floor': 'signing-floor',
  gateway: 'gateway (SQLite store)',
  'gateway-pg': 'gateway (PostgreSQL store)',
};

export interface SystemOptions {
  concurrency: number;
  roundSeconds: number;
  warmupSeconds: number;
  rounds: number;
  largeBytes: number;
  largeRounds: number;
  phases: { small: boolean; large: boolean };
  /** Also measure a gateway on the PostgreSQL store (small requests only). */
  postgres: boolean;
  /** Extra environment for the gateway processes (e.g. KEYGATE_ACCESS_LOG=off for a comparison). */
  gatewayEnv?: Record<string, string>;
  /** Extra node flags for the node floor (--cpu-prof under --profile). */
  nodeFloorArgs?: readonly string[];
  log: (line: string) => void;
}

export interface SmallResult {
  method: 'HEAD' | 'GET';
  target: TargetName;
  /** Median round by req/s. */
  median: LoadResult;
  rounds: LoadResult[];
  /** The proxy's own CPU time per request in each round, ms (empty for direct: the upstream's is not counted). */
  cpuMsPerRequestByRound: number[];
  /** Median of cpuMsPerRequestByRound; null for direct. */
  cpuMsPerRequest: number | null;
  /** gateway-pg only: the PostgreSQL server's CPU time per request in each round, ms (all its processes). */
  storeServerCpuMsPerRequestByRound: number[];
  /** Median of storeServerCpuMsPerRequestByRound; null for the other targets. */
  storeServerCpuMsPerRequest: number | null;
  /** gateway-pg only: change-id reads the PostgreSQL server ran per request, in each round. */
  changeIdReadsPerRequestByRound: number[];
}

export interface LargeResult {
  operation: 'PUT' | 'GET';
  /** nginx is a reference: what any extra proxy hop costs on this machine. */
  target: TargetName;
  /** All rounds together: total bytes / total seconds. */
  megabytesPerSecond: number;
  seconds: number;
  rounds: TransferResult[];
}

export interface SystemResults {
  small: SmallResult[];
  large: LargeResult[];
  /** Gateway VmHWM across the large transfers (reset before them), bytes. */
  largePeakRss: number | null;
  /** CPU seconds each proxy process used per GiB it carried during the large transfers (PUT and GET together). */
  largeCpuSecondsPerGiB: Record<LargeProxyName, number> | null;
  /** Gateway VmHWM over the whole run, bytes. */
  runPeakRss: number;
  /** The node floor's VmHWM over the whole run (same runtime environment, same traffic): what Node itself reaches. */
  nodeFloorPeakRss: number;
  gatewayIdleRss: number;
  upstreamDescription: string;
  /** The PostgreSQL-store gateway and its server, when measured. */
  postgres: { version: string; gatewayIdleRss: number; gatewayPeakRss: number } | null;
}

interface Targets {
  upstream: Upstream;
  gateway: GatewayProcess;
  /** Every proxy measured, the gateways included (gateway-pg only when the PostgreSQL store is measured). */
  proxies: Partial<Record<ProxyName, BenchProcess>>;
  gatewayKeys: Partial<Record<GatewayName, { accessKeyId: string; secretAccessKey: string }>>;
  /** The server behind gateway-pg. */
  postgres: BenchPostgres | null;
}

function presign(base: string, method: string, objectKey: string, credentials: { accessKeyId: string; secretAccessKey: string }, region: string): URL {
  const encodedKey = objectKey.split('/').map(encodeURIComponent).join('/');
  return new URL(
    presignUrl({
      method,
      url: new URL(`${base}/${BUCKET}/${encodedKey}`),
      ...credentials,
      region,
      expiresInSeconds: URL_LIFETIME_SECONDS,
    }),
  );
}

/** URL for `target`; all but the gateways get URLs signed with the upstream's credentials (nginx and the node floor add no auth). */
function urlFor(targets: Targets, target: TargetName, method: string, objectKey: string): URL {
  if (target === 'gateway' || target === 'gateway-pg') return presign(originOf(targets, target), method, objectKey, targets.gatewayKeys[target]!, 'us-east-1');
  return presign(originOf(targets, target), method, objectKey, S3RVER_CREDENTIALS, UPSTREAM_REGION);
}

function proxy(targets: Targets, target: ProxyName): BenchProcess {
  const found = targets.proxies[target];
  if (found === undefined) throw new Error(`${target} is not running in this bench`);
  return found;
}

function originOf(targets: Targets, target: TargetName): string {
  return target === 'direct' ? targets.upstream.url : proxy(targets, target).url;
}

function pidOf(targets: Targets, target: TargetName): number | null {
  return target === 'direct' ? null : proxy(targets, target).pid;
}

async function createUpstreamBucket(upstream: Upstream): Promise<void> {
  const url = new URL(
    presignUrl({ method: 'PUT', url: new URL(`${upstream.url}/${BUCKET}`), ...S3RVER_CREDENTIALS, region: UPSTREAM_REGION, expiresInSeconds: 600 }),
  );
  const response = await fetch(url, { method: 'PUT' });
  if (response.status !== 200) throw new Error(`creating bucket ${BUCKET} on s3rver failed: ${response.status} ${await response.text()}`);
}

export async function runSystemBench(options: SystemOptions): Promise<SystemResults> {
  const { log } = options;
  const upstream = await startS3rverUpstream();
  let gateway: GatewayProcess | null = null;
  let gatewayPg: GatewayProcess | null = null;
  let postgres: BenchPostgres | null = null;
  let nginx: BenchProcess | null = null;
  let nodeFloor: BenchProcess | null = null;
  let signingFloor: BenchProcess | null = null;
  try {
    await createUpstreamBucket(upstream);
    gateway = await startGateway(upstream, options.gatewayEnv);
    await gateway.addBucket(BUCKET);
    const gatewayKeys: Targets['gatewayKeys'] = { gateway: await gateway.createKey(BUCKET) };
    nginx = await startNginx(upstream);
    nodeFloor = await startNodeFloor(upstream, options.nodeFloorArgs);
    const proxies: Targets['proxies'] = { nginx, 'node-floor': nodeFloor, gateway };
    if (options.phases.small) {
      signingFloor = await startSigningFloor(upstream);
      proxies['signing-floor'] = signingFloor;
    }
    if (options.postgres && options.phases.small) {
      postgres = await startBenchPostgres();
      // The same build and settings; only the store differs. KEYGATE_BENCH_NODE_ARGS (--profile) stays with the SQLite gateway.
      gatewayPg = await startGateway(
        upstream,
        { ...options.gatewayEnv, KEYGATE_DATABASE_URL: postgres.url, KEYGATE_MASTER_KEY: '5a'.repeat(32) },
        { benchNodeArgs: false },
      );
      await gatewayPg.addBucket(BUCKET);
      gatewayKeys['gateway-pg'] = await gatewayPg.createKey(BUCKET);
      proxies['gateway-pg'] = gatewayPg;
      log(`PostgreSQL store: ${postgres.version}, postmaster pid ${postgres.pid}; gateway (PostgreSQL store) pid ${gatewayPg.pid} ${gatewayPg.url}`);
    }
    const targets: Targets = { upstream, gateway, proxies, gatewayKeys, postgres };
    log(
      `processes: s3rver pid ${upstream.pid} ${upstream.url}, gateway pid ${gateway.pid} ${gateway.url}, nginx pid ${nginx.pid} ${nginx.url}, node floor pid ${nodeFloor.pid} ${nodeFloor.url}${signingFloor ? `, signing floor pid ${signingFloor.pid} ${signingFloor.url}` : ''}`,
    );

    const small = options.phases.small ? await smallRequests(targets, options) : [];
    const gatewayIdleRss = memoryOf(gateway.pid).rss;
    const postgresResult =
      gatewayPg && postgres
        ? { version: postgres.version, gatewayIdleRss: memoryOf(gatewayPg.pid).rss, gatewayPeakRss: memoryOf(gatewayPg.pid).peakRss }
        : null;
    // Not needed for the large objects: stopped now, so its idle processes take nothing from them.
    await gatewayPg?.stop();
    gatewayPg = null;
    await postgres?.stop();
    postgres = null;
    await signingFloor?.stop();
    signingFloor = null;
    const { large, largePeakRss, largeCpuSecondsPerGiB } = options.phases.large
      ? await largeObjects(targets, options)
      : { large: [], largePeakRss: null, largeCpuSecondsPerGiB: null };
    const runPeakRss = memoryOf(gateway.pid).peakRss;
    const nodeFloorPeakRss = memoryOf(nodeFloor.pid).peakRss;
    return {
      nodeFloorPeakRss,
      small,
      large,
      largePeakRss,
      largeCpuSecondsPerGiB,
      runPeakRss: Math.max(runPeakRss, largePeakRss ?? 0),
      gatewayIdleRss,
      upstreamDescription: `s3rver ${upstream.url} (files in ${upstream.directory})`,
      postgres: postgresResult,
    };
  } catch (error) {
    if (gateway) log(`gateway output (tail):\n${gateway.output().slice(-4000)}`);
    if (gatewayPg) log(`gateway (PostgreSQL store) output (tail):\n${gatewayPg.output().slice(-4000)}`);
    throw error;
  } finally {
    await nodeFloor?.stop();
    await signingFloor?.stop();
    await nginx?.stop();
    await gateway?.stop();
    await gatewayPg?.stop();
    await postgres?.stop();
    await upstream.stop();
  }
}

async function smallRequests(targets: Targets, options: SystemOptions): Promise<SmallResult[]> {
  const keys = Array.from({ length: SMALL_OBJECT_COUNT }, (_, i) => `small/object-${String(i).padStart(3, '0')}.bin`);
  const body = Buffer.alloc(SMALL_OBJECT_BYTES, 'x');
  for (const key of keys) {
    const response = await fetch(urlFor(targets, 'direct', 'PUT', key), { method: 'PUT', body });
    if (response.status !== 200) throw new Error(`seeding ${key} failed: ${response.status} ${await response.text()}`);
  }
  const measured = TARGETS.filter((target) => target === 'direct' || targets.proxies[target] !== undefined);
  const { postgres } = targets;
  const results: SmallResult[] = [];
  for (const method of ['HEAD', 'GET'] as const) {
    const rounds = new Map<TargetName, LoadResult[]>(measured.map((t) => [t, []]));
    const cpuByRound = new Map<TargetName, number[]>(measured.map((t) => [t, []]));
    const storeServerCpuByRound: number[] = [];
    const readsByRound: number[] = [];
    const paths = new Map<TargetName, string[]>(
      measured.map((t) => [
        t,
        keys.map((key) => {
          const url = urlFor(targets, t, method, key);
          return url.pathname + url.search;
        }),
      ]),
    );
    for (let round = 0; round < options.rounds; round++) {
      // Rotate the order so no target always runs first (or right after the same neighbour).
      const order = measured.map((_, i) => measured[(i + round) % measured.length]!);
      for (const target of order) {
        const pid = pidOf(targets, target);
        const store = target === 'gateway-pg' ? postgres : null;
        // Filled when the warm-up ends (a holder: the callback's assignments are invisible to narrowing).
        const atMeasureStart: { cpu: number; storeCpu: number; statements: Promise<StoreStatements> | null } = { cpu: 0, storeCpu: 0, statements: null };
        const result = await runClosedLoop({
          origin: originOf(targets, target),
          method,
          paths: paths.get(target)!,
          concurrency: options.concurrency,
          durationMs: options.roundSeconds * 1000,
          warmupMs: options.warmupSeconds * 1000,
          expectedBytes: SMALL_OBJECT_BYTES,
          onMeasureStart: () => {
            if (pid !== null) atMeasureStart.cpu = cpuSecondsOf(pid);
            if (store) {
              atMeasureStart.storeCpu = store.cpuSeconds();
              atMeasureStart.statements = store.storeStatements();
            }
          },
        });
        // From the end of the warm-up until the last request counted was answered.
        if (pid !== null && result.requests > 0) cpuByRound.get(target)!.push(((cpuSecondsOf(pid) - atMeasureStart.cpu) * 1000) / result.requests);
        let storeNote = '';
        if (store && atMeasureStart.statements && result.requests > 0) {
          // The server's CPU first: the statement count below is a query it answers.
          storeServerCpuByRound.push(((store.cpuSeconds() - atMeasureStart.storeCpu) * 1000) / result.requests);
          const [before, after] = [await atMeasureStart.statements, await store.storeStatements()];
          readsByRound.push((after.changeIdReads - before.changeIdReads) / result.requests);
          storeNote = `, PostgreSQL ${(storeServerCpuByRound.at(-1)! * 1000).toFixed(0)} µs CPU and ${readsByRound.at(-1)!.toFixed(2)} change-id reads per request`;
          if (after.reloads !== before.reloads) storeNote += `, ${after.reloads - before.reloads} reloads`;
        }
        if (result.errors > 0) throw new Error(`${method} via ${target}: ${result.errors} of ${result.requests} requests failed; first: ${result.firstError}`);
        rounds.get(target)!.push(result);
        const cpu = pid === null ? '' : `, ${(cpuByRound.get(target)!.at(-1)! * 1000).toFixed(0)} µs CPU per request`;
        options.log(
          `  ${method} ${target.padEnd(10)} round ${round + 1}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${cpu}${storeNote}`,
        );
      }
    }
    for (const target of measured) {
      const all = rounds.get(target)!;
      const sorted = [...all].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
      const cpu = cpuByRound.get(target)!;
      const pgOnly = target === 'gateway-pg';
      results.push({
        method,
        target,
        median: sorted[Math.floor(sorted.length / 2)]!,
        rounds: all,
        cpuMsPerRequestByRound: cpu,
        cpuMsPerRequest: cpu.length === 0 ? null : median(cpu),
        storeServerCpuMsPerRequestByRound: pgOnly ? storeServerCpuByRound : [],
        storeServerCpuMsPerRequest: pgOnly && storeServerCpuByRound.length > 0 ? median(storeServerCpuByRound) : null,
        changeIdReadsPerRequestByRound: pgOnly ? readsByRound : [],
      });
    }
  }
  return results;
}

async function largeObjects(
  targets: Targets,
  options: SystemOptions,
): Promise<{ large: LargeResult[]; largePeakRss: number | null; largeCpuSecondsPerGiB: Record<LargeProxyName, number> | null }> {
  const size = options.largeBytes;
  const key = (target: string) => `large/${target}-${size}.bin`;
  const runs = new Map<string, TransferResult[]>();
  const record = (operation: 'PUT' | 'GET', target: TargetName, result: TransferResult) => {
    const id = `${operation} ${target}`;
    runs.set(id, [...(runs.get(id) ?? []), result]);
    options.log(`  ${id.padEnd(11)} ${(size / 2 ** 20).toFixed(0)} MiB: ${result.seconds.toFixed(2)} s, ${result.megabytesPerSecond.toFixed(0)} MB/s`);
  };
  const canResetPeak = resetPeakRss(targets.gateway.pid);
  let sampledPeak = memoryOf(targets.gateway.pid).rss;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, memoryOf(targets.gateway.pid).rss);
  }, 50);
  const cpuBefore = Object.fromEntries(LARGE_PROXIES.map((name) => [name, cpuSecondsOf(proxy(targets, name).pid)])) as Record<LargeProxyName, number>;
  try {
    for (let round = 0; round < options.largeRounds; round++) {
      const order: (typeof LARGE_TARGETS)[number][] =
        round % 2 === 0 ? ['direct', 'gateway', 'nginx', 'node-floor'] : ['node-floor', 'nginx', 'gateway', 'direct'];
      for (const target of order) record('PUT', target, await putObject(urlFor(targets, target, 'PUT', key(target)).href, size));
      for (const target of order) record('GET', target, await getObject(urlFor(targets, target, 'GET', key(target)).href, size));
    }
  } finally {
    clearInterval(sampler);
  }
  // Same bytes stored both ways: s3rver's MD5 ETags must agree, or the gateway altered the data.
  const putEtags = new Set(LARGE_TARGETS.flatMap((target) => runs.get(`PUT ${target}`)!.map((r) => r.etag)));
  if (putEtags.size !== 1) throw new Error(`the object stored through the gateway differs from the one stored directly (ETags ${[...putEtags].join(', ')})`);
  const large: LargeResult[] = [];
  for (const [id, rounds] of runs) {
    const [operation, target] = id.split(' ') as ['PUT' | 'GET', TargetName];
    const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
    const bytes = rounds.reduce((sum, r) => sum + r.bytes, 0);
    large.push({ operation, target, rounds, seconds, megabytesPerSecond: bytes / 1e6 / seconds });
  }
  const peak = canResetPeak ? memoryOf(targets.gateway.pid).peakRss : sampledPeak;
  // Each proxy is idle while the others transfer, so its CPU over the phase is its cost for its own bytes.
  const gibThrough = (target: TargetName) => large.filter((r) => r.target === target).reduce((sum, r) => sum + r.rounds.length * size, 0) / 2 ** 30;
  const largeCpuSecondsPerGiB = Object.fromEntries(
    LARGE_PROXIES.map((name) => [name, (cpuSecondsOf(proxy(targets, name).pid) - cpuBefore[name]) / gibThrough(name)]),
  ) as Record<LargeProxyName, number>;
  return { large, largePeakRss: Math.max(peak, sampledPeak), largeCpuSecondsPerGiB };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
