/**
 * Processes the soak needs beyond test/helpers: s3rver in its own process (the in-process helper
 * would share the load generator's event loop and core), and the shipped CLI deleting a key from
 * another process while gateways serve traffic from the same store (the SQLite file of one
 * gateway, or the PostgreSQL store several instances share).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, stopChild, type Gateway } from '../helpers/gateway.js';
import { signedRequest } from '../helpers/upstreams.js';

export interface UpstreamProcess {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** s3rver stores aws-chunked bodies raw: the gateway must not forward trailing checksums to it. */
  capabilityOverrides: { trailingChecksums: boolean };
  pid: number;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' };
const STARTUP_TIMEOUT_MS = 30_000;

export async function startS3rverProcess(): Promise<UpstreamProcess> {
  const directory = mkdtempSync(path.join(tmpdir(), 'keygate-soak-s3rver-'));
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'test/helpers/s3rver-main.cjs'), directory], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-16_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const stop = async () => {
    await stopChild(child);
    rmSync(directory, { recursive: true, force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`s3rver did not start within ${STARTUP_TIMEOUT_MS} ms:\n${output}`)), STARTUP_TIMEOUT_MS);
      const onData = () => {
        const match = /listening (\d+)/.exec(output);
        if (!match) return;
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(Number(match[1]));
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited with ${code} before listening:\n${output}`));
      });
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const credentials = { endpoint, ...S3RVER_CREDENTIALS };
    return {
      ...credentials,
      capabilityOverrides: { trailingChecksums: false },
      pid: child.pid!,
      async createBucket(name) {
        const response = await signedRequest(credentials, 'PUT', `/${name}`);
        if (response.status !== 200) throw new Error(`creating bucket ${name} on s3rver failed: ${response.status} ${response.body.toString()}`);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Resident set size of any process in bytes, from /proc. */
export function processRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) * 1024;
}

/** True while the process exists (signal 0 checks without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `keygate keys delete ID` with the built CLI on the gateway's data dir and master key: a second
 * process writing the SQLite file the gateway reads on every request. Resolves once it exited 0.
 */
export function deleteKeyWithCli(gateway: Gateway, accessKeyId: string): Promise<void> {
  return runCliDelete(gateway.env, accessKeyId);
}

export interface SharedStore {
  /** KEYGATE_DATABASE_URL of the PostgreSQL key store the instances share. */
  databaseUrl: string;
  /** KEYGATE_MASTER_KEY the instances run with (it unseals the stored secrets). */
  masterKey: string;
}

/**
 * `keygate keys delete ID` with the built CLI pointed at the shared PostgreSQL store, run as an
 * operator would: its own (empty) data dir, the database URL and the master key, nothing of any
 * gateway instance (no ports, no upstream). Resolves once it exited 0.
 */
export async function deleteKeyWithCliOnPostgres(store: SharedStore, accessKeyId: string): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keygate-soak-cli-'));
  try {
    await runCliDelete({ KEYGATE_DATA_DIR: dataDir, KEYGATE_DATABASE_URL: store.databaseUrl, KEYGATE_MASTER_KEY: store.masterKey }, accessKeyId);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function runCliDelete(env: Record<string, string>, accessKeyId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, 'dist/cli/main.js'), 'keys', 'delete', accessKeyId],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`keygate keys delete ${accessKeyId} failed (${error.message}):\n${stdout}\n${stderr}`));
        else resolve();
      },
    );
  });
}
