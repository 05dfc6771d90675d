/**
 * `npm run bench`: the gateway side by side with the same upstream hit directly and with nginx
 * proxying to it, in one run on this machine, plus the per-request cost of the gateway's own work
 * (SigV4 verification, key store, authorization). Small requests also go through a second gateway
 * on the PostgreSQL store (a throwaway server on this machine), reported against the SQLite one.
 * Prints a markdown table and writes it to .bench/report.md.
 *
 * Options: --quick (short rounds and a 64 MiB object, for trying changes; targets are not judged),
 * --only=small,large,micro (phases to run), --large-mib=N, --rounds=N, --seconds=N, --profile
 * (the gateway and the node floor run with --cpu-prof into .bench/profiles/ and the report says where
 * their CPU went, side by side and, with --only=small, per request),
 * --no-postgres (no PostgreSQL server: no PostgreSQL-store gateway in the small requests, SQLite-only store rows).
 * KEYGATE_BENCH_NODE_ARGS adds node flags to the (SQLite-store) gateway process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 *
 * Numbers are for this machine only; compare rows of one run with each other, not with other machines.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { authorize } from '../src/authz.js';
import type { AccessKey } from '../src/keys/model.js';
import { parseAddress } from '../src/s3/address.js';
import { classify } from '../src/s3/classify.js';
import { postgresAvailable } from '../test/helpers/postgres.js';
import { REPO_ROOT } from './processes.js';
import { newestProfile, profileSection } from './profile.js';
import { runSigv4Bench, timePerOp, type BenchRow } from './sigv4.js';
import { KEY_COUNT, runStoreBench } from './store.js';
import { runSystemBench, SMALL_OBJECT_BYTES, TARGET_LABELS, type LargeResult, type SmallResult, type SystemResults } from './system.js';

/**
 * The goals. Small requests are judged by CPU per request, which stays steady on a machine whose
 * cores the client and the upstream share; req/s there moves with whoever else is busy.
 */
export const TARGETS = {
  /** Gateway CPU per small request at most this multiple of the node floor's, in the same run. */
  smallCpuVsNodeFloor: 1.5,
  largeVsDirect: 0.9,
  peakRssBytes: 150 * 1e6,
};

interface CliOptions {
  quick: boolean;
  profile: boolean;
  /** A gateway on the PostgreSQL store in the small requests. */
  postgres: boolean;
  phases: Set<string>;
  largeMib: number;
  rounds: number;
  seconds: number;
}

function parseCli(argv: string[]): CliOptions {
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick');
  const only = value('only');
  const phases = new Set(only ? only.split(',') : ['small', 'large', 'micro']);
  for (const phase of phases) if (!['small', 'large', 'micro'].includes(phase)) throw new Error(`--only takes small, large and micro; got "${phase}"`);
  return {
    quick,
    profile: argv.includes('--profile'),
    postgres: !argv.includes('--no-postgres'),
    phases,
    largeMib: Number(value('large-mib') ?? (quick ? 64 : 1024)),
    rounds: Number(value('rounds') ?? (quick ? 1 : 3)),
    seconds: Number(value('seconds') ?? (quick ? 3 : 5)),
  };
}

function authzRow(): BenchRow {
  const key: AccessKey = {
    accessKeyId: 'rs_ak_live_0000000000000000000000000000000000000000',
    name: 'bench',
    kind: 'bucket',
    bucket: 'photos',
    permissions: ['read', 'write'],
    expiresAt: null,
    createdAt: new Date(),
    lastUsedAt: null,
    disabledAt: null,
    rateLimit: null,
    allowedIps: null,
    prefix: null,
  };
  const headers = { host: 'localhost:9000' };
  const us = timePerOp(() => {
    const address = parseAddress('/photos/2025/03/holiday%20%E2%9C%93.jpg?partNumber=3&uploadId=abc', headers.host, null);
    authorize(key, classify('PUT', address, headers));
  });
  const name = 'address parse + classify + authorize (UploadPart)';
  return {
    name,
    value: us,
    unit: 'µs/op',
    detail: `${Math.round(1000 / us)}k ops/s`,
    markdown: `| ${name} | ${us.toFixed(2)} µs/op | ${Math.round(1000 / us)}k ops/s |`,
  };
}

const percent = (ratio: number) => `${(ratio * 100).toFixed(0)}%`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const verdict = (ok: boolean, judged: boolean) => (!judged ? 'not judged (--quick)' : ok ? '**PASS**' : '**FAIL**');

const micros = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;

function smallTable(small: SmallResult[]): string[] {
  const lines = [
    `| request | target | req/s | p50 | p99 | added p50 / p99 vs direct | target's own CPU per request (rounds) | + PostgreSQL server's CPU per request (rounds) |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of small) {
    const direct = small.find((d) => d.method === r.method && d.target === 'direct')!.median;
    const m = r.median;
    const signed = (ms: number) => `${ms < 0 ? '−' : '+'}${Math.abs(ms).toFixed(2)}`;
    const added = r.target === 'direct' ? '—' : `${signed(m.p50Ms - direct.p50Ms)} / ${signed(m.p99Ms - direct.p99Ms)} ms`;
    const cpu = r.cpuMsPerRequest === null ? '—' : `${micros(r.cpuMsPerRequest)} (${r.cpuMsPerRequestByRound.map(micros).join(' / ')})`;
    const storeCpu =
      r.storeServerCpuMsPerRequest === null ? '—' : `${micros(r.storeServerCpuMsPerRequest)} (${r.storeServerCpuMsPerRequestByRound.map(micros).join(' / ')})`;
    const spread = r.rounds.map((x) => x.requestsPerSecond.toFixed(0)).join(' / ');
    lines.push(
      `| ${r.method} ${SMALL_OBJECT_BYTES / 1024} KiB | ${TARGET_LABELS[r.target]} | ${m.requestsPerSecond.toFixed(0)} (rounds ${spread}) | ${m.p50Ms.toFixed(2)} ms | ${m.p99Ms.toFixed(2)} ms | ${added} | ${cpu} | ${storeCpu} |`,
    );
  }
  return lines;
}

function largeTable(large: LargeResult[], size: number): string[] {
  const lines = ['| transfer | target | throughput | rounds |', '|---|---|---|---|'];
  for (const r of large) {
    lines.push(
      `| ${r.operation} ${size / 2 ** 30 >= 1 ? `${size / 2 ** 30} GiB` : `${size / 2 ** 20} MiB`} | ${r.target} | ${r.megabytesPerSecond.toFixed(0)} MB/s | ${r.rounds.map((x) => `${x.seconds.toFixed(2)} s`).join(', ')} |`,
    );
  }
  return lines;
}

interface Spread {
  median: number;
  min: number;
  max: number;
}

/** a / b round by round (both measured in the same round): the median round and the range. */
function roundRatios(a: number[], b: number[]): Spread {
  const ratios = a.map((value, round) => value / b[round]!).sort((x, y) => x - y);
  return { median: ratios[Math.floor(ratios.length / 2)]!, min: ratios[0]!, max: ratios.at(-1)! };
}

/** One proxy's CPU per request over another's, round by round (both measured in the same round). */
export function cpuRatios(proxy: SmallResult, other: SmallResult): Spread {
  return roundRatios(proxy.cpuMsPerRequestByRound, other.cpuMsPerRequestByRound);
}

const times = (ratio: number) => `${ratio.toFixed(2)}×`;
const spreadText = (ratio: Spread) => `${times(ratio.median)} (rounds ${times(ratio.min)}–${times(ratio.max)})`;

/** The gateway on the PostgreSQL store against the one on SQLite, round by round (same rounds, same traffic). */
function postgresTable(system: SystemResults): string[] {
  const lines = [
    '| request | measure | gateway (SQLite store) | gateway (PostgreSQL store) | PostgreSQL / SQLite, median round (range) |',
    '|---|---|---|---|---|',
  ];
  for (const method of ['HEAD', 'GET'] as const) {
    const sqlite = system.small.find((r) => r.method === method && r.target === 'gateway');
    const pg = system.small.find((r) => r.method === method && r.target === 'gateway-pg');
    if (!sqlite || !pg || pg.storeServerCpuMsPerRequest === null) continue;
    const request = `${method} ${SMALL_OBJECT_BYTES / 1024} KiB`;
    const withServer = pg.cpuMsPerRequestByRound.map((ms, round) => ms + pg.storeServerCpuMsPerRequestByRound[round]!);
    const perRound = (result: SmallResult, pick: (round: SmallResult['median']) => number) => result.rounds.map(pick);
    const rps = (x: SmallResult['median']) => x.requestsPerSecond;
    const p50 = (x: SmallResult['median']) => x.p50Ms;
    const p99 = (x: SmallResult['median']) => x.p99Ms;
    const reads = [...pg.changeIdReadsPerRequestByRound].sort((a, b) => a - b);
    lines.push(
      `| ${request} | gateway CPU per request | ${micros(sqlite.cpuMsPerRequest!)} | ${micros(pg.cpuMsPerRequest!)} | ${spreadText(cpuRatios(pg, sqlite))} |`,
      `| ${request} | CPU per request with the PostgreSQL server's | ${micros(sqlite.cpuMsPerRequest!)} | ${micros(pg.cpuMsPerRequest!)} + ${micros(pg.storeServerCpuMsPerRequest)} | ${spreadText(roundRatios(withServer, sqlite.cpuMsPerRequestByRound))} |`,
      `| ${request} | req/s | ${sqlite.median.requestsPerSecond.toFixed(0)} | ${pg.median.requestsPerSecond.toFixed(0)} | ${spreadText(roundRatios(perRound(pg, rps), perRound(sqlite, rps)))} |`,
      `| ${request} | p50 latency | ${sqlite.median.p50Ms.toFixed(2)} ms | ${pg.median.p50Ms.toFixed(2)} ms | ${spreadText(roundRatios(perRound(pg, p50), perRound(sqlite, p50)))} |`,
      `| ${request} | p99 latency | ${sqlite.median.p99Ms.toFixed(2)} ms | ${pg.median.p99Ms.toFixed(2)} ms | ${spreadText(roundRatios(perRound(pg, p99), perRound(sqlite, p99)))} |`,
      `| ${request} | change-id reads per request (PostgreSQL's count) | — (one PRAGMA data_version) | ${reads[Math.floor(reads.length / 2)]!.toFixed(2)} (rounds ${pg.changeIdReadsPerRequestByRound.map((x) => x.toFixed(2)).join(' / ')}) | — |`,
    );
  }
  if (system.postgres) {
    lines.push(
      `| — | gateway RSS, idle after the small requests | ${mb(system.gatewayIdleRss)} | ${mb(system.postgres.gatewayIdleRss)} (peak ${mb(system.postgres.gatewayPeakRss)}) | — |`,
    );
  }
  return lines;
}

function goalsTable(system: SystemResults, judged: boolean): string[] {
  const lines = ['| goal | target | measured | result |', '|---|---|---|---|'];
  for (const method of ['HEAD', 'GET'] as const) {
    const find = (target: string) => system.small.find((r) => r.method === method && r.target === target);
    const [gateway, floor, nginx, signingFloor] = [find('gateway'), find('node-floor'), find('nginx'), find('signing-floor')];
    if (!gateway || !floor || !nginx) continue;
    const vsFloor = cpuRatios(gateway, floor);
    const vsNginx = cpuRatios(gateway, nginx);
    const reported = (what: string, ratio: Spread, a: SmallResult, b: SmallResult) =>
      `| small ${method}: ${what} (reference) | — | ${times(ratio.median)} (rounds ${times(ratio.min)}–${times(ratio.max)}; ${micros(a.cpuMsPerRequest!)} / ${micros(b.cpuMsPerRequest!)}) | reported |`;
    lines.push(
      `| small ${method}: gateway CPU per request / node floor's | ≤ ${times(TARGETS.smallCpuVsNodeFloor)} | ${times(vsFloor.median)} (rounds ${times(vsFloor.min)}–${times(vsFloor.max)}; ${micros(gateway.cpuMsPerRequest!)} / ${micros(floor.cpuMsPerRequest!)}) | ${verdict(vsFloor.max <= TARGETS.smallCpuVsNodeFloor, judged)} |`,
      reported("gateway CPU per request / nginx's", vsNginx, gateway, nginx),
    );
    if (signingFloor) {
      // What verifying and re-signing alone cost, and what the gateway spends around them.
      lines.push(
        reported("signing floor's CPU per request / node floor's", cpuRatios(signingFloor, floor), signingFloor, floor),
        reported("gateway CPU per request / signing floor's", cpuRatios(gateway, signingFloor), gateway, signingFloor),
      );
    }
  }
  for (const operation of ['PUT', 'GET'] as const) {
    const gateway = system.large.find((r) => r.operation === operation && r.target === 'gateway');
    const direct = system.large.find((r) => r.operation === operation && r.target === 'direct');
    if (!gateway || !direct) continue;
    const ratio = gateway.megabytesPerSecond / direct.megabytesPerSecond;
    const nginx = system.large.find((r) => r.operation === operation && r.target === 'nginx');
    const reference = nginx ? `; reference: nginx / direct ${percent(nginx.megabytesPerSecond / direct.megabytesPerSecond)}` : '';
    lines.push(
      `| large ${operation} throughput, gateway / direct | ≥ ${percent(TARGETS.largeVsDirect)} | ${percent(ratio)} (${gateway.megabytesPerSecond.toFixed(0)} / ${direct.megabytesPerSecond.toFixed(0)} MB/s${reference}) | ${verdict(ratio >= TARGETS.largeVsDirect, judged)} |`,
    );
  }
  if (system.large.length > 0 && system.largePeakRss !== null) {
    lines.push(
      `| gateway peak RSS (VmHWM) during large transfers | < ${mb(TARGETS.peakRssBytes)} | ${mb(system.largePeakRss)} | ${verdict(system.largePeakRss < TARGETS.peakRssBytes, judged)} |`,
    );
  }
  lines.push(
    `| gateway peak RSS (VmHWM) over the whole run | < ${mb(TARGETS.peakRssBytes)} | ${mb(system.runPeakRss)} (idle after small requests: ${mb(system.gatewayIdleRss)}) | ${verdict(system.runPeakRss < TARGETS.peakRssBytes, judged)} |`,
    `| node floor peak RSS (VmHWM) over the whole run (reference: same flags, same traffic) | — | ${mb(system.nodeFloorPeakRss)} | reported |`,
  );
  return lines;
}

function machine(): string {
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  let nginxVersion = 'nginx not found';
  try {
    nginxVersion = execFileSync('/usr/sbin/nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() || 'nginx';
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    nginxVersion = (typeof stderr === 'string' ? stderr.trim() : '') || nginxVersion;
  }
  const s3rverVersion = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules/s3rver/package.json'), 'utf8')) as { version: string }).version;
  return `${cpus().length} × ${cpuModel}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, node ${process.version}, ${nginxVersion.replace('nginx version: ', '')}, s3rver ${s3rverVersion}`;
}

async function main(): Promise<void> {
  const options = parseCli(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // Said in the report, not failed on: the rest of the bench needs no PostgreSQL.
  const postgresMissing = options.postgres && !postgresAvailable();
  if (postgresMissing) log('PostgreSQL server binaries not found (/usr/lib/postgresql/<version>/bin): no PostgreSQL store in this run');
  const loadAtStart = loadavg()[0]!;
  const sections: string[] = [`# keygate benchmark (${new Date().toISOString()})`, '', `Machine: ${machine()}.`, ''];
  let system: SystemResults | null = null;

  const profileDir = path.join(REPO_ROOT, '.bench/profiles');
  const nodeFloorProfileDir = path.join(profileDir, 'node-floor');
  if (options.profile) {
    process.env.KEYGATE_BENCH_NODE_ARGS = `${process.env.KEYGATE_BENCH_NODE_ARGS ?? ''} --cpu-prof --cpu-prof-dir=${profileDir}`;
  }
  if (options.phases.has('small') || options.phases.has('large')) {
    log('building dist/ (npm run build) so the gateway runs as it ships…');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: REPO_ROOT,
      stdio: 'inherit',
    });
    system = await runSystemBench({
      concurrency: 32,
      roundSeconds: options.seconds,
      warmupSeconds: options.quick ? 1 : 2,
      rounds: options.rounds,
      largeBytes: options.largeMib * 2 ** 20,
      largeRounds: options.quick ? 1 : 2,
      phases: { small: options.phases.has('small'), large: options.phases.has('large') },
      postgres: options.postgres && !postgresMissing,
      nodeFloorArgs: options.profile ? ['--cpu-prof', `--cpu-prof-dir=${nodeFloorProfileDir}`] : [],
      log,
    });
    sections.push(
      `Upstream: s3rver (a real S3 server: Koa, objects as files on local disk) in its own process; the gateway is \`node dist/cli/main.js serve\` with default settings (access log to stdout, drained by the bench; keys in SQLite in its data dir); ${system.postgres ? `the gateway (PostgreSQL store) is the same build and settings with KEYGATE_DATABASE_URL pointing at a throwaway ${system.postgres.version} server on this machine (loopback TCP, fsync off, pg_stat_statements loaded to count the store's reads), small requests only; ` : ''}nginx is one worker with keep-alive to the upstream, no auth; the node floor (bench/node-floor.mjs) is node:http + an undici Pool passing requests through, no auth, no logging, same node, NODE_OPTIONS and MALLOC_ARENA_MAX as the gateway; the signing floor (bench/signing-floor.mjs, small requests only) is the node floor plus the gateway's own SigV4 verification of each presigned URL and its aws4 re-signing, nothing else (no key store, scope, log or metrics). All of them, and the load generator, share this machine's cores.`,
      '',
      '## Goals',
      '',
      ...goalsTable(system, !options.quick),
      '',
    );
    if (system.small.length > 0) {
      sections.push(
        `## Small requests (${SMALL_OBJECT_BYTES / 1024} KiB objects, concurrency 32, ${options.seconds} s per target and round after ${options.quick ? 1 : 2} s warm-up, ${options.rounds} rounds in rotated order, median round shown)`,
        '',
        'Every request is a presigned URL made before the run (each gateway: an rs_ key of its own; direct, nginx and both floors: the upstream credentials), so the load generator does the same work for each target.',
        '',
        ...smallTable(system.small),
        '',
      );
      if (system.postgres) {
        sections.push(
          '## PostgreSQL store (the same small requests, same rounds)',
          '',
          "Each request awaits one change-id check; requests arriving together share one read over the gateway's pool (one in flight, one queued), and the tables are reloaded only when the change id differs (none did here). The PostgreSQL server's CPU (all its processes, from /proc) over the gateway's measured windows is work the deployment pays too.",
          '',
          ...postgresTable(system),
          '',
        );
      } else if (options.postgres) {
        sections.push('No PostgreSQL-store gateway in this run: PostgreSQL server binaries not found.', '');
      }
    }
    if (system.large.length > 0) {
      sections.push(
        `## Large objects (one ${options.largeMib} MiB object per transfer, presigned PUT with Content-Length / GET, streamed, ${options.quick ? 1 : 2} rounds)`,
        '',
        ...largeTable(system.large, options.largeMib * 2 ** 20),
        '',
        ...(system.largeCpuSecondsPerGiB
          ? [
              `CPU per GiB carried (PUT and GET together): gateway ${system.largeCpuSecondsPerGiB.gateway.toFixed(2)} s, node floor ${system.largeCpuSecondsPerGiB['node-floor'].toFixed(2)} s, nginx ${system.largeCpuSecondsPerGiB.nginx.toFixed(2)} s. A proxy on the same two cores takes that CPU from the client and the upstream.`,
              '',
            ]
          : []),
      );
    }
  }

  const profile = options.profile ? newestProfile(profileDir) : null;
  if (profile !== null) {
    const floorProfile = newestProfile(nodeFloorProfileDir);
    // Per request only when the profiles saw nothing but small requests (the large transfers would be in them too).
    const answered = (target: 'gateway' | 'node-floor') =>
      system !== null && system.large.length === 0
        ? system.small.filter((result) => result.target === target).reduce((sum, result) => sum + result.rounds.reduce((n, round) => n + round.answered, 0), 0)
        : null;
    sections.push(
      ...profileSection(
        { file: profile, requests: answered('gateway') },
        floorProfile === null ? null : { file: floorProfile, requests: answered('node-floor') },
        (file) => path.relative(REPO_ROOT, file),
      ),
    );
  }

  if (options.phases.has('micro')) {
    // After the processes are gone, so the micro benchmarks have the cores to themselves.
    const rows = [...(await runSigv4Bench()), ...(await runStoreBench({ postgres: options.postgres && !postgresMissing, log })), authzRow()];
    sections.push(
      '## Gateway work per request (in-process microbenchmarks)',
      '',
      !options.postgres || postgresMissing
        ? `Key store rows: SQLite only (${postgresMissing ? 'PostgreSQL server binaries not found' : '--no-postgres'}); opened with openStore() and filled through its API (${KEY_COUNT} keys, one bucket).`
        : `Key store rows: both stores opened with openStore() and filled through their API (${KEY_COUNT} keys, one bucket); PostgreSQL is a throwaway server on this machine over loopback TCP. Wall time is the best 20 ms stretch; CPU per request is the mean over ≥ 1 s, this process's (the gateway's side) and the PostgreSQL server's (all its processes, /proc).`,
      '',
      '| measurement | result | detail |',
      '|---|---|---|',
      ...rows.map((row) => row.markdown),
      '',
    );
  }

  // Other work on the machine takes cores from the processes measured: say how busy it was.
  sections.push(
    `Load average (1 min) before the run: ${loadAtStart.toFixed(2)}, at its end: ${loadavg()[0]!.toFixed(2)} (includes the bench's own busy processes) on ${cpus().length} cores. A start value well above 0.5 means other work shared the cores: req/s figures are then noisy, the CPU-per-request column less so.`,
    '',
  );
  const report = sections.join('\n');
  mkdirSync(path.join(REPO_ROOT, '.bench'), { recursive: true });
  writeFileSync(path.join(REPO_ROOT, '.bench/report.md'), report);
  process.stdout.write(report);
}

await main();
