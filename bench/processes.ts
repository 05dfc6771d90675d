/**
 * The processes the benchmark measures, each started the way it runs for real and each in its own
 * process so CPU and memory are attributable: the upstream (s3rver), the gateway
 * (`node dist/cli/main.js serve`, the shipped build; a second one on the PostgreSQL store, whose
 * server bench/postgres.ts starts), and for comparison an nginx reverse proxy and the node floor (a
 * bare node:http + undici pass-through).
 * The gateway starts through the integration tests' helper (vitest-free), so both run it alike:
 * the built CLI, the Docker image's runtime environment (NODE_OPTIONS, MALLOC_ARENA_MAX), its own
 * data dir.
 */
export { cpuSecondsOf } from '../test/helpers/process-resources.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway as startTestGateway, stopChild, upstreamEnv } from '../test/helpers/gateway.js';
import { freePort } from '../test/helpers/ports.js';
import { shippedRuntimeEnv } from '../test/helpers/shipped-runtime-env.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');
export const NGINX_BINARY = '/usr/sbin/nginx';

/** s3rver's built-in account; it checks SigV4 access key ids but does not recompute signatures. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const UPSTREAM_REGION = 'us-east-1';

export interface BenchProcess {
  pid: number;
  /** http://127.0.0.1:PORT */
  url: string;
  stop(): Promise<void>;
}

export interface Upstream extends BenchProcess {
  directory: string;
}

export interface GatewayProcess extends BenchProcess {
  adminUrl: string;
  /** Last output lines, for error messages. */
  output(): string;
  createKey(bucket: string): Promise<{ accessKeyId: string; secretAccessKey: string }>;
  addBucket(name: string): Promise<void>;
}

const OUTPUT_TAIL_CHARS = 64 * 1024;

/** Collects a child's output (always drained: a full pipe would stall the child), keeping the tail. */
function captureOutput(child: ChildProcess): () => string {
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > OUTPUT_TAIL_CHARS) output = output.slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

async function waitFor(what: string, child: ChildProcess, output: () => string, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${output()}`);
    if (await ready().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s:\n${output()}`);
}

export async function startS3rverUpstream(): Promise<Upstream> {
  const directory = mkdtempSync(path.join(tmpdir(), 'keygate-bench-s3rver-'));
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'test/helpers/s3rver-main.cjs'), directory], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child);
  let port = 0;
  await waitFor('s3rver', child, output, async () => {
    port = Number(/listening (\d+)/.exec(output())?.[1] ?? 0);
    return port > 0;
  });
  return {
    pid: child.pid!,
    url: `http://127.0.0.1:${port}`,
    directory,
    async stop() {
      await stopChild(child);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * The gateway as it ships, with the default upstream pointed at the bench upstream. Access logging
 * stays at its default so the measured path is the shipped one. KEYGATE_BENCH_NODE_ARGS adds node
 * flags (e.g. --cpu-prof: the profile is written on the clean exit at stop()) unless `benchNodeArgs`
 * is false (a second gateway, so that one profile is the gateway's). extraEnv can point it at a
 * PostgreSQL store (KEYGATE_DATABASE_URL, KEYGATE_MASTER_KEY).
 */
export async function startGateway(
  upstream: Upstream,
  extraEnv: Record<string, string> = {},
  options: { benchNodeArgs?: boolean } = {},
): Promise<GatewayProcess> {
  const nodeArgs = (options.benchNodeArgs === false ? '' : (process.env.KEYGATE_BENCH_NODE_ARGS ?? '')).split(' ').filter((arg) => arg !== '');
  const env = {
    ...upstreamEnv({ endpoint: upstream.url, region: UPSTREAM_REGION, ...S3RVER_CREDENTIALS, capabilityOverrides: { trailingChecksums: false } }),
    ...extraEnv,
  };
  const gateway = await startTestGateway(env, { nodeArgs });
  return {
    pid: gateway.pid,
    url: gateway.url,
    adminUrl: gateway.adminUrl,
    output: () => gateway.output(),
    addBucket: (name) => gateway.addBucket({ name }),
    async createKey(bucket) {
      const key = await gateway.createKey({ name: 'bench', bucket, preset: 'read-write' });
      return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
    },
    stop: () => gateway.stop(),
  };
}

/**
 * The node floor (bench/node-floor.mjs): node:http + an undici Pool passing requests through to the
 * upstream, nothing else. Same node, same undici and the same runtime environment (NODE_OPTIONS,
 * MALLOC_ARENA_MAX) as the gateway, so the difference between the two is keygate's own work.
 * nodeArgs: extra node flags (--cpu-prof for `npm run bench -- --profile`).
 */
export function startNodeFloor(upstream: Upstream, nodeArgs: readonly string[] = []): Promise<BenchProcess> {
  return startFloorScript('node floor', 'bench/node-floor.mjs', [upstream.url], nodeArgs);
}

/**
 * The signing floor (bench/signing-floor.mjs): the node floor plus the gateway's own SigV4
 * verification of the client's presigned URL and aws4 re-signing, with the upstream's credentials
 * as its one key. What any SigV4-re-signing proxy on Node pays per request; needs the build.
 */
export function startSigningFloor(upstream: Upstream): Promise<BenchProcess> {
  const { accessKeyId, secretAccessKey } = S3RVER_CREDENTIALS;
  return startFloorScript('signing floor', 'bench/signing-floor.mjs', [upstream.url, accessKeyId, secretAccessKey, UPSTREAM_REGION], []);
}

async function startFloorScript(name: string, script: string, args: readonly string[], nodeArgs: readonly string[]): Promise<BenchProcess> {
  const child = spawn(process.execPath, [...nodeArgs, path.join(REPO_ROOT, script), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...shippedRuntimeEnv() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child);
  let port = 0;
  await waitFor(name, child, output, async () => {
    port = Number(/listening (\d+)/.exec(output())?.[1] ?? 0);
    return port > 0;
  });
  return { pid: child.pid!, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

/**
 * nginx as a plain reverse proxy to the same upstream, no auth: what "just proxying" costs.
 * One worker process, like the single-threaded gateway, and keep-alive connections to the upstream.
 */
export async function startNginx(upstream: Upstream): Promise<BenchProcess> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'keygate-bench-nginx-'));
  mkdirSync(path.join(prefix, 'logs'));
  const port = await freePort();
  const upstreamHost = new URL(upstream.url).host;
  const conf = `
worker_processes 1;
error_log ${prefix}/logs/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  client_max_body_size 0;
  keepalive_requests 1000000;
  upstream s3 {
    server ${upstreamHost};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://s3;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }
}
`;
  const confPath = path.join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child = spawn(NGINX_BINARY, ['-p', prefix, '-c', confPath, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutput(child);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('nginx', child, output, async () => {
    await fetch(url);
    return true;
  });
  return {
    pid: child.pid!,
    url,
    async stop() {
      await stopChild(child, 'SIGQUIT');
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** Memory figures of a process from /proc, in bytes. VmHWM is the peak resident set since start. */
export function memoryOf(pid: number): { rss: number; peakRss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peakRss: kib('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux clear_refs "5"), so a later peak belongs to one phase. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
