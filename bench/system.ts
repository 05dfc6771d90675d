/**
 * End-to-end benchmarks against real processes, side by side in one run: the gateway, the same
 * upstream hit directly, nginx proxying to that upstream without auth, and the node floor (a bare
 * node:http + undici pass-through, bench/node-floor.mjs).
 *
 * Small requests: HEAD/GET of 1 KiB objects at concurrency 32, each target for the same time,
 * repeated in rounds with the target order rotated (the two cores are shared, so a target measured
 * right after another pays for its leftovers); the median round is reported, and each proxy's own
 * CPU per request per round, read from /proc over the measured window.
 * Large objects: one PUT and one GET of a generated object per target and round; the gateway's
 * peak RSS (VmHWM) is reset before and read after the transfers.
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
  startS3rverUpstream,
  UPSTREAM_REGION,
  type BenchProcess,
  type GatewayProcess,
  type Upstream,
} from './processes.js';
import { presignUrl } from '../src/sigv4/sign.js';

export const BUCKET = 'bench';
export const SMALL_OBJECT_BYTES = 1024;
const SMALL_OBJECT_COUNT = 64;
/** Presigned URLs are made once and must outlive the run. */
const URL_LIFETIME_SECONDS = 3 * 3600;

export type ProxyName = 'nginx' | 'node-floor' | 'gateway';
export type TargetName = 'direct' | ProxyName;
export const TARGETS: readonly TargetName[] = ['direct', 'nginx', 'node-floor', 'gateway'];
export const PROXIES: readonly ProxyName[] = ['nginx', 'node-floor', 'gateway'];

export interface SystemOptions {
  concurrency: number;
  roundSeconds: number;
  warmupSeconds: number;
  rounds: number;
  largeBytes: number;
  largeRounds: number;
  phases: { small: boolean; large: boolean };
  /** Extra environment for the gateway process (e.g. KEYGATE_ACCESS_LOG=off for a comparison). */
  gatewayEnv?: Record<string, string>;
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
  largeCpuSecondsPerGiB: Record<ProxyName, number> | null;
  /** Gateway VmHWM over the whole run, bytes. */
  runPeakRss: number;
  /** The node floor's VmHWM over the whole run (same NODE_OPTIONS, same traffic): what Node itself reaches. */
  nodeFloorPeakRss: number;
  gatewayIdleRss: number;
  upstreamDescription: string;
}

interface Targets {
  upstream: Upstream;
  gateway: GatewayProcess;
  /** Every proxy measured, the gateway included. */
  proxies: Record<ProxyName, BenchProcess>;
  gatewayKey: { accessKeyId: string; secretAccessKey: string };
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

/** URL for `target`; all but the gateway get URLs signed with the upstream's credentials (nginx and the node floor add no auth). */
function urlFor(targets: Targets, target: TargetName, method: string, objectKey: string): URL {
  if (target === 'gateway') return presign(targets.gateway.url, method, objectKey, targets.gatewayKey, 'us-east-1');
  return presign(originOf(targets, target), method, objectKey, S3RVER_CREDENTIALS, UPSTREAM_REGION);
}

function originOf(targets: Targets, target: TargetName): string {
  return target === 'direct' ? targets.upstream.url : targets.proxies[target].url;
}

function pidOf(targets: Targets, target: TargetName): number | null {
  return target === 'direct' ? null : targets.proxies[target].pid;
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
  let nginx: BenchProcess | null = null;
  let nodeFloor: BenchProcess | null = null;
  try {
    await createUpstreamBucket(upstream);
    gateway = await startGateway(upstream, options.gatewayEnv);
    await gateway.addBucket(BUCKET);
    const gatewayKey = await gateway.createKey(BUCKET);
    nginx = await startNginx(upstream);
    nodeFloor = await startNodeFloor(upstream);
    const targets: Targets = { upstream, gateway, proxies: { nginx, 'node-floor': nodeFloor, gateway }, gatewayKey };
    log(
      `processes: s3rver pid ${upstream.pid} ${upstream.url}, gateway pid ${gateway.pid} ${gateway.url}, nginx pid ${nginx.pid} ${nginx.url}, node floor pid ${nodeFloor.pid} ${nodeFloor.url}`,
    );

    const small = options.phases.small ? await smallRequests(targets, options) : [];
    const gatewayIdleRss = memoryOf(gateway.pid).rss;
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
    };
  } catch (error) {
    if (gateway) log(`gateway output (tail):\n${gateway.output().slice(-4000)}`);
    throw error;
  } finally {
    await nodeFloor?.stop();
    await nginx?.stop();
    await gateway?.stop();
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
  const results: SmallResult[] = [];
  for (const method of ['HEAD', 'GET'] as const) {
    const rounds = new Map<TargetName, LoadResult[]>(TARGETS.map((t) => [t, []]));
    const cpuByRound = new Map<TargetName, number[]>(TARGETS.map((t) => [t, []]));
    const paths = new Map<TargetName, string[]>(
      TARGETS.map((t) => [
        t,
        keys.map((key) => {
          const url = urlFor(targets, t, method, key);
          return url.pathname + url.search;
        }),
      ]),
    );
    for (let round = 0; round < options.rounds; round++) {
      // Rotate the order so no target always runs first (or right after the same neighbour).
      const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]!);
      for (const target of order) {
        const pid = pidOf(targets, target);
        let cpuAtMeasureStart = 0;
        const result = await runClosedLoop({
          origin: originOf(targets, target),
          method,
          paths: paths.get(target)!,
          concurrency: options.concurrency,
          durationMs: options.roundSeconds * 1000,
          warmupMs: options.warmupSeconds * 1000,
          expectedBytes: SMALL_OBJECT_BYTES,
          onMeasureStart: () => {
            if (pid !== null) cpuAtMeasureStart = cpuSecondsOf(pid);
          },
        });
        // From the end of the warm-up until the last request counted was answered.
        if (pid !== null && result.requests > 0) cpuByRound.get(target)!.push(((cpuSecondsOf(pid) - cpuAtMeasureStart) * 1000) / result.requests);
        if (result.errors > 0) throw new Error(`${method} via ${target}: ${result.errors} of ${result.requests} requests failed; first: ${result.firstError}`);
        rounds.get(target)!.push(result);
        const cpu = pid === null ? '' : `, ${(cpuByRound.get(target)!.at(-1)! * 1000).toFixed(0)} µs CPU per request`;
        options.log(
          `  ${method} ${target.padEnd(10)} round ${round + 1}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${cpu}`,
        );
      }
    }
    for (const target of TARGETS) {
      const all = rounds.get(target)!;
      const sorted = [...all].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
      const cpu = cpuByRound.get(target)!;
      results.push({
        method,
        target,
        median: sorted[Math.floor(sorted.length / 2)]!,
        rounds: all,
        cpuMsPerRequestByRound: cpu,
        cpuMsPerRequest: cpu.length === 0 ? null : median(cpu),
      });
    }
  }
  return results;
}

async function largeObjects(
  targets: Targets,
  options: SystemOptions,
): Promise<{ large: LargeResult[]; largePeakRss: number | null; largeCpuSecondsPerGiB: Record<ProxyName, number> | null }> {
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
  const cpuBefore = Object.fromEntries(PROXIES.map((proxy) => [proxy, cpuSecondsOf(targets.proxies[proxy].pid)])) as Record<ProxyName, number>;
  try {
    for (let round = 0; round < options.largeRounds; round++) {
      const order: TargetName[] = round % 2 === 0 ? ['direct', 'gateway', 'nginx', 'node-floor'] : ['node-floor', 'nginx', 'gateway', 'direct'];
      for (const target of order) record('PUT', target, await putObject(urlFor(targets, target, 'PUT', key(target)).href, size));
      for (const target of order) record('GET', target, await getObject(urlFor(targets, target, 'GET', key(target)).href, size));
    }
  } finally {
    clearInterval(sampler);
  }
  // Same bytes stored both ways: s3rver's MD5 ETags must agree, or the gateway altered the data.
  const putEtags = new Set(TARGETS.flatMap((target) => runs.get(`PUT ${target}`)!.map((r) => r.etag)));
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
    PROXIES.map((proxy) => [proxy, (cpuSecondsOf(targets.proxies[proxy].pid) - cpuBefore[proxy]) / gibThrough(proxy)]),
  ) as Record<ProxyName, number>;
  return { large, largePeakRss: Math.max(peak, sampledPeak), largeCpuSecondsPerGiB };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
