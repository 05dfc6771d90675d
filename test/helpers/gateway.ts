/**
 * Starts a real keygate process (`node dist/cli/main.js serve`) on free loopback ports with its own
 * data dir, and talks to its admin API. Integration tests drive it with real S3 clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export interface CreatedKey {
  accessKeyId: string;
  secretAccessKey: string;
  name: string;
  bucket: string | null;
  permissions: string[];
  endpoint: string;
  region: string;
  expiresAt: string | null;
  createdAt: string;
  rateLimit: { requestsPerSecond: number; burst: number } | null;
  allowedIps: string[] | null;
  prefix: string | null;
}

export interface Gateway {
  url: string;
  adminUrl: string;
  adminToken: string;
  dataDir: string;
  pid: number;
  env: Record<string, string>;
  output(): string;
  admin(method: string, route: string, body?: unknown): Promise<{ status: number; json: any }>;
  createKey(input: {
    name?: string;
    bucket?: string;
    permissions?: string[];
    preset?: string;
    expiresIn?: string | number;
    rateLimit?: string | number;
    rateBurst?: number;
    allowedIps?: string | string[];
    prefix?: string;
  }): Promise<CreatedKey>;
  deleteKey(accessKeyId: string): Promise<void>;
  addBucket(input: { name: string; datacenter?: string; endpoint?: string; region?: string; upstreamBucket?: string }): Promise<void>;
  /** Resident set size of the gateway process in bytes (from /proc). */
  rss(): number;
  stop(): Promise<void>;
}

export { freePort } from './ports.js';

const OUTPUT_TAIL_CHARS = 1 << 20;
import { freePort } from './ports.js';
import { shippedRuntimeEnv } from './shipped-runtime-env.js';

export interface StartGatewayOptions {
  /** Flags for node itself (before the script), e.g. `--trace-gc`. */
  nodeArgs?: string[];
}

export async function startGateway(env: Record<string, string> = {}, options: StartGatewayOptions = {}): Promise<Gateway> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keygate-it-'));
  const [port, adminPort] = [await freePort(), await freePort()];
  const adminToken = 'test-admin-token-0123456789abcdef';
  const fullEnv: Record<string, string> = {
    KEYGATE_DATA_DIR: dataDir,
    KEYGATE_HOST: '127.0.0.1',
    KEYGATE_PORT: String(port),
    KEYGATE_ADMIN_HOST: '127.0.0.1',
    KEYGATE_ADMIN_PORT: String(adminPort),
    KEYGATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    KEYGATE_ADMIN_TOKEN: adminToken,
    KEYGATE_MASTER_KEY: '11'.repeat(32),
    KEYGATE_REGION: 'us-east-1',
    ...env,
  };
  // The built artifact (test/global-setup.ts builds it), as it ships: no transpiler in the process.
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), path.join(REPO_ROOT, 'dist/cli/main.js'), 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...shippedRuntimeEnv(), ...fullEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Always drained (a full pipe would block the gateway's synchronous stdout writes); only the
  // tail is kept, since access-log lines add up over a long run.
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > OUTPUT_TAIL_CHARS) output = output.slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // A gateway that ends on its own is a defect whatever the test sees next (connection refused):
  // say so, with its last words, where the test run's output shows it.
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(`\n[keygate test gateway ${child.pid} exited by itself: code ${code} signal ${signal}]\n${output.slice(-8000)}\n`);
  });
  const url = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForHealth(`${url}/_health`, child, () => output);
  await waitForHealth(`${adminUrl}/health`, child, () => output);

  const admin = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${adminUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : null };
  };

  return {
    url,
    adminUrl,
    adminToken,
    dataDir,
    pid: child.pid!,
    env: fullEnv,
    output: () => output,
    admin,
    async createKey(input) {
      const { status, json } = await admin('POST', '/v1/keys', { name: 'test', ...input });
      if (status !== 201) throw new Error(`creating key failed: ${status} ${JSON.stringify(json)}`);
      return json as CreatedKey;
    },
    async deleteKey(accessKeyId) {
      const { status } = await admin('DELETE', `/v1/keys/${accessKeyId}`);
      if (status !== 204) throw new Error(`deleting key failed: ${status}`);
    },
    async addBucket(input) {
      const { status, json } = await admin('POST', '/v1/buckets', input);
      if (status !== 201) throw new Error(`adding bucket failed: ${status} ${JSON.stringify(json)}`);
    },
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
      return kib * 1024;
    },
    async stop() {
      stopping = true;
      await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function waitForHealth(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`keygate exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`keygate did not become healthy at ${url}:\n${output()}`);
}

/** Signals a child process and waits for it to exit; SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Gateway environment pointing the default upstream at a test upstream. */
export function upstreamEnv(upstream: {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  capabilityOverrides?: { trailingChecksums?: boolean };
}): Record<string, string> {
  return {
    KEYGATE_UPSTREAM_ENDPOINT: upstream.endpoint,
    KEYGATE_UPSTREAM_REGION: upstream.region,
    KEYGATE_UPSTREAM_ACCESS_KEY_ID: upstream.accessKeyId,
    KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: upstream.secretAccessKey,
    KEYGATE_UPSTREAM_TRAILING_CHECKSUMS: upstream.capabilityOverrides?.trailingChecksums === false ? '0' : '1',
  };
}
