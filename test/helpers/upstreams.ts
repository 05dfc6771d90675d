/**
 * Real S3 servers for tests: moto (a Python process, optionally validating SigV4 signatures
 * against an IAM user it creates) and s3rver (in-process).
 * Each picks a free loopback port, waits until it answers, and cleans up after itself.
 *
 * moto's signature check is patched (see MOTO_RAW_URI_PATCH): stock moto 5.2 rebuilds the
 * canonical request from the URL its web server already decoded and re-quoted, so it rejects
 * correct signatures for keys with spaces, '+', '%', non-ASCII or sub-delimiters and for queries
 * like prefix=dir%2F (boto3's own requests included). The patch makes moto sign over the raw
 * request target, as S3 does; everything else about validation is moto's.
 *
 * Known limits of the servers (found by test/upstream; keep tests honest about them):
 * - moto does not check trailing checksum values (it stores whatever the trailer says).
 * - s3rver checks only the access key id of SigV4 requests, not the signature.
 * - s3rver cannot address keys containing '//' or starting with '/' (404).
 * - s3rver stores `aws-chunked` bodies raw (chunk envelope included): a gateway must not forward
 *   trailing checksums to it (see `capabilityOverrides`).
 * - s3rver commits a truncated body when the client disconnects mid-upload.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Server as HttpServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import aws4 from 'aws4';
import { request as undiciRequest } from 'undici';
import type { UpstreamCapabilities } from '../../src/upstream/target.js';

export interface SignedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface SignedRequestOptions {
  /** Already percent-encoded query string, without '?'. */
  query?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Sign for another service than s3 (moto routes by the credential scope's service). */
  service?: string;
}

export interface TestUpstream {
  /** e.g. http://127.0.0.1:41234 (no trailing slash). */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where an in-process server keeps its objects (removed by stop()); null for moto (in memory). */
  directory: string | null;
  /** Capabilities a gateway must turn off for this server (merge into the target's capabilities). */
  capabilityOverrides: Partial<UpstreamCapabilities>;
  createBucket(name: string): Promise<void>;
  /**
   * A SigV4-signed request straight to the server, for arranging and inspecting state without the
   * code under test. `path` must already be percent-encoded (e.g. `/bucket/some%20key`).
   */
  request(method: string, path: string, options?: SignedRequestOptions): Promise<SignedResponse>;
  stop(): Promise<void>;
}

export { freePort as freeLoopbackPort } from './ports.js';
import { freePort } from './ports.js';

/** Sends one signed request; the body is buffered (tests only send small bodies this way). */
export async function signedRequest(
  credentials: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string },
  method: string,
  requestPath: string,
  options: SignedRequestOptions = {},
): Promise<SignedResponse> {
  const url = new URL(credentials.endpoint);
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const fullPath = options.query ? `${requestPath}?${options.query}` : requestPath;
  const signed = aws4.sign(
    {
      service: options.service ?? 's3',
      region: credentials.region,
      method,
      host: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: fullPath,
      // aws4 would default a body's type to form-urlencoded, which moto's web server then consumes as a form.
      headers: { ...(body ? { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } : {}), ...options.headers },
      body,
      doNotEncodePath: true,
    },
    { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
  );
  const response = await undiciRequest(`${url.origin}${fullPath}`, {
    method,
    headers: signed.headers as Record<string, string>,
    body,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
}

async function createBucketOrThrow(upstream: Pick<TestUpstream, 'request'>, name: string): Promise<void> {
  const response = await upstream.request('PUT', `/${name}`);
  if (response.status !== 200) {
    throw new Error(`creating bucket ${name} failed: ${response.status} ${response.body.toString()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// moto

export interface MotoOptions {
  /** Require every request to carry a valid SigV4 signature from the IAM user created at start. */
  validateSignatures?: boolean;
}

/**
 * Loaded by moto_server's Python at start (as sitecustomize): moto's authenticator reads the
 * request URL (`self.uri`) to rebuild the canonical request; swap in the raw request target
 * werkzeug keeps in RAW_URI for the duration of the check. Prints a marker the harness waits for,
 * so a moto version this no longer fits fails loudly instead of validating differently.
 */
const MOTO_RAW_URI_PATCH = `
import sys
try:
    from urllib.parse import urlparse
    from moto.core import authorization, responses

    _setup_class = responses.BaseResponse.setup_class

    def setup_class(self, request, full_url, headers, *args, **kwargs):
        environ = getattr(request, "environ", None)
        self._keygate_raw_uri = environ.get("RAW_URI") if isinstance(environ, dict) else None
        return _setup_class(self, request, full_url, headers, *args, **kwargs)

    _authenticate = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self, iam_request_cls, resource="*"):
        raw_uri = getattr(self, "_keygate_raw_uri", None)
        if not raw_uri:
            return _authenticate(self, iam_request_cls, resource)
        decoded_uri = self.uri
        parsed = urlparse(decoded_uri)
        self.uri = parsed.scheme + "://" + parsed.netloc + raw_uri
        try:
            return _authenticate(self, iam_request_cls, resource)
        finally:
            self.uri = decoded_uri

    responses.BaseResponse.setup_class = setup_class
    authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate
    print("keygate: moto raw-URI signature patch applied", file=sys.stderr, flush=True)
except Exception as error:
    print("keygate: moto raw-URI signature patch FAILED: %r" % (error,), file=sys.stderr, flush=True)
`;
const MOTO_PATCH_MARKER = 'keygate: moto raw-URI signature patch applied';

const MOTO_REGION = 'us-east-1';
/** Any key works while moto does not validate; these are its documented placeholders. */
const MOTO_UNVALIDATED_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export async function startMoto(options: MotoOptions = {}): Promise<TestUpstream> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const patchDirectory = mkdtempSync(path.join(tmpdir(), 'keygate-moto-'));
  writeFileSync(path.join(patchDirectory, 'sitecustomize.py'), MOTO_RAW_URI_PATCH);
  const pythonPath = [patchDirectory, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  // detached: the pyenv shim execs python in a new process group we can signal as a whole.
  const child = spawn('moto_server', ['-p', String(port), '-H', '127.0.0.1'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONPATH: pythonPath },
  });
  let output = '';
  const keepTail = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout.on('data', keepTail);
  child.stderr.on('data', keepTail);
  // A detached child outlives a crashed test worker unless we take it down on the way out.
  const killOnExit = () => signalProcessGroup(child, 'SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await stopProcessGroup(child);
    rmSync(patchDirectory, { recursive: true, force: true });
  };

  try {
    await waitUntilAnswering(`${endpoint}/moto-api/`, child, () => output);
    if (!output.includes(MOTO_PATCH_MARKER)) {
      throw new Error(`moto_server did not load the raw-URI signature patch (PYTHONPATH sitecustomize):\n${output}`);
    }
    let credentials = MOTO_UNVALIDATED_CREDENTIALS;
    if (options.validateSignatures) {
      credentials = await createMotoAdministrator(endpoint);
      // From now on every action must be signed by a known IAM key (see moto's reset-auth API).
      const reset = await undiciRequest(`${endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
      await reset.body.dump();
      if (reset.statusCode !== 200) throw new Error(`moto reset-auth answered ${reset.statusCode}`);
    }
    const upstream: TestUpstream = {
      endpoint,
      region: MOTO_REGION,
      ...credentials,
      directory: null,
      capabilityOverrides: {},
      request: (method, requestPath, requestOptions) => signedRequest({ endpoint, region: MOTO_REGION, ...credentials }, method, requestPath, requestOptions),
      createBucket: (name) => createBucketOrThrow(upstream, name),
      stop,
    };
    return upstream;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Creates an IAM user allowed to do everything and returns its access key (while auth is still off). */
async function createMotoAdministrator(endpoint: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const iam = { endpoint, region: MOTO_REGION, ...MOTO_UNVALIDATED_CREDENTIALS };
  const call = async (params: Record<string, string>): Promise<string> => {
    const response = await signedRequest(iam, 'POST', '/', {
      service: 'iam',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: new URLSearchParams({ Version: '2010-05-08', ...params }).toString(),
    });
    const text = response.body.toString();
    if (response.status !== 200) throw new Error(`moto IAM ${params.Action} failed: ${response.status} ${text}`);
    return text;
  };
  const userName = 'keygate-test-admin';
  await call({ Action: 'CreateUser', UserName: userName });
  await call({
    Action: 'PutUserPolicy',
    UserName: userName,
    PolicyName: 'allow-everything',
    PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }),
  });
  const keyXml = await call({ Action: 'CreateAccessKey', UserName: userName });
  const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(keyXml)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(keyXml)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error(`moto CreateAccessKey returned no key: ${keyXml}`);
  return { accessKeyId, secretAccessKey };
}

async function waitUntilAnswering(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await undiciRequest(url, { method: 'GET' });
      await response.body.dump();
      return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`moto_server did not answer at ${url} within 30 s:\n${output()}`);
}

function signalProcessGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function stopProcessGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalProcessGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalProcessGroup(child, 'SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// s3rver

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: HttpServer;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver's built-in account (it checks SigV4 access key ids, not signatures). */
const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const S3RVER_REGION = 'us-east-1';

export async function startS3rver(): Promise<TestUpstream> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const directory = mkdtempSync(path.join(tmpdir(), 'keygate-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    allowMismatchedSignatures: false,
    resetOnClose: false,
  });
  let address: { port: number };
  try {
    address = await server.run();
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  let stopped = false;
  const upstream: TestUpstream = {
    directory,
    endpoint,
    region: S3RVER_REGION,
    ...S3RVER_CREDENTIALS,
    capabilityOverrides: { trailingChecksums: false },
    request: (method, requestPath, requestOptions) =>
      signedRequest({ endpoint, region: S3RVER_REGION, ...S3RVER_CREDENTIALS }, method, requestPath, requestOptions),
    createBucket: (name) => createBucketOrThrow(upstream, name),
    async stop() {
      if (stopped) return;
      stopped = true;
      // close() waits for open sockets; a pooled keep-alive connection of a test client must not hang it.
      const closed = server.close();
      server.httpServer?.closeAllConnections();
      await closed;
      rmSync(directory, { recursive: true, force: true });
    },
  };
  return upstream;
}
