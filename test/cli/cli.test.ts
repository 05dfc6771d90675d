/**
 * The real `keygate` CLI in child processes (tsx), on throwaway data dirs: output shapes, exit codes,
 * and error messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { run } from '../helpers/clients.js';
import path from 'node:path';
import { CLI_ENTRY, REPO_ROOT, TEST_MASTER_KEY_HEX, freePort, makeTempDirs, runCliProcess } from '../helpers/keygate-cli.js';
import { CREATED_KEY_FIELDS } from '../helpers/key-shapes.js';

const dirs = makeTempDirs();
afterAll(() => dirs.cleanup());

const PUBLIC_URL = 'https://s3.example.test:8443';
let env: Record<string, string>;
beforeAll(() => {
  env = { KEYGATE_DATA_DIR: dirs.make(), KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_PUBLIC_URL: PUBLIC_URL, KEYGATE_REGION: 'us-east-1' };
});

const keygate = (...args: string[]) => runCliProcess(args, env);
const keygateWith = (extra: Record<string, string>, ...args: string[]) => runCliProcess(args, { ...env, ...extra });

function expectNoStackTrace(text: string): void {
  expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
  expect(text).not.toMatch(/Error: /);
}

describe('keys create', () => {
  it('--json prints exactly the documented object', async () => {
    const result = await keygate('keys', 'create', '--name', 'ci uploader', '--bucket', 'my-data', '--preset', 'read-write', '--expires-in', '30d', '--json');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const json = JSON.parse(result.stdout);
    expect(Object.keys(json)).toEqual(CREATED_KEY_FIELDS);
    expect(json.rateLimit).toBeNull();
    expect(json.allowedIps).toBeNull();
    expect(json.prefix).toBeNull();
    expect(json.accessKeyId).toMatch(/^rs_ak_live_[0-9a-f]{40}$/);
    expect(json.secretAccessKey).toMatch(/^rs_sk_live_[0-9a-f]{64}$/);
    expect(json).toMatchObject({ name: 'ci uploader', bucket: 'my-data', permissions: ['read', 'write'], endpoint: PUBLIC_URL, region: 'us-east-1' });
    expect(json.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(json.expiresAt) - Date.parse(json.createdAt)).toBe(30 * 86_400_000);
    // The unregistered-bucket note goes to stderr so stdout stays parseable.
    expect(result.stderr).toMatch(/not registered/);
  });

  it('--json for a workspace key without expiry has null bucket and expiresAt', async () => {
    const result = await keygate('keys', 'create', '--name', 'ops', '--perm', 'read,delete', '--perm', 'admin', '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ bucket: null, permissions: ['read', 'delete', 'admin'], expiresAt: null });
  });

  it('human output shows the secret once with a warning, an env block and a boto3 snippet', async () => {
    const result = await keygate('keys', 'create', '--name', 'notebook', '--bucket', 'abc123xyz9', '--preset', 'read-only');
    expect(result.code).toBe(0);
    const out = result.stdout;
    const id = /rs_ak_live_[0-9a-f]{40}/.exec(out)?.[0];
    const secret = /rs_sk_live_[0-9a-f]{64}/.exec(out)?.[0];
    expect(id).toBeDefined();
    expect(secret).toBeDefined();
    expect(out).toMatch(/shown only this once/);
    expect(out).toContain(`Endpoint           ${PUBLIC_URL}`);
    expect(out).toContain('Region             us-east-1');
    // The variables aws-cli and the AWS SDKs read as they are, each line as it would be pasted.
    for (const line of [
      `export AWS_ACCESS_KEY_ID=${id}`,
      `export AWS_SECRET_ACCESS_KEY=${secret}`,
      `export AWS_ENDPOINT_URL=${PUBLIC_URL}`,
      'export AWS_REGION=us-east-1',
      'export AWS_DEFAULT_REGION=us-east-1',
      'import boto3',
      's3 = boto3.client(',
      `    endpoint_url="${PUBLIC_URL}",`,
      `    aws_access_key_id="${id}",`,
      `    aws_secret_access_key="${secret}",`,
      '    region_name="us-east-1",',
      '    config=Config(s3={"addressing_style": "path"}),',
      'print(s3.list_objects_v2(Bucket="abc123xyz9").get("KeyCount"))',
    ]) {
      expect(out.split('\n')).toContain(line);
    }
    expect(out).not.toMatch(/S3_ENDPOINT_URL|S3_ACCESS_KEY_ID/);
  });

  // The full table of usage errors runs in-process (test/cli/run.test.ts); these prove the exit code reaches the shell.
  it.concurrent.for([
    [['keys', 'create', '--name', 'x', '--bucket', 'my-data', '--perm', 'read,admin'], /cannot have admin/],
    [['keys', 'create', '--name', 'x', '--preset', 'read-only', '--admin'], /Unknown option '--admin'/],
    [['keys', 'show'], /Missing ACCESS_KEY_ID/],
    [['frobnicate'], /Unknown command "frobnicate"/],
  ] as Array<[string[], RegExp]>)('usage error %j exits 2 with a hint', async ([args, message], { expect }) => {
    const result = await keygate(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Run `keygate .*--help` for usage\./);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(result.stdout).toBe('');
  });
});

describe('keys list / show / delete', () => {
  it('lists, shows and deletes keys in human and JSON form', async () => {
    const listEnv = { ...env, KEYGATE_DATA_DIR: dirs.make() };
    const run = (...args: string[]) => runCliProcess(args, listEnv);
    const empty = await run('keys', 'list');
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/No access keys yet/);
    expect(JSON.parse((await run('keys', 'list', '--json')).stdout)).toEqual([]);

    const a = JSON.parse((await run('keys', 'create', '--name', 'alpha', '--preset', 'read-only', '--json')).stdout);
    const b = JSON.parse(
      (await run('keys', 'create', '--name', 'beta', '--bucket', 'my-data', '--preset', 'read-write', '--expires-in', '12h', '--json')).stdout,
    );

    const table = await run('keys', 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ACCESS KEY ID\s+NAME\s+STATE\s+SCOPE\s+PERMISSIONS\s+EXPIRES\s+LAST USED\s+CREATED$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^${a.accessKeyId}\\s+alpha\\s+enabled\\s+workspace\\s+read\\s+never\\s+never\\s+\\d{4}-`));
    expect(lines[2]).toMatch(new RegExp(`^${b.accessKeyId}\\s+beta\\s+enabled\\s+bucket:my-data\\s+read,write\\s+\\d{4}-`));
    // Columns are aligned: NAME starts at the same offset on every line.
    const nameColumn = lines[0]!.indexOf('NAME');
    expect(lines[1]!.indexOf('alpha')).toBe(nameColumn);
    expect(lines[2]!.indexOf('beta')).toBe(nameColumn);
    expect(table.stdout).not.toContain('rs_sk_');

    const listed = JSON.parse((await run('keys', 'list', '--json')).stdout);
    const { secretAccessKey: _a, ...aPublic } = a;
    const { secretAccessKey: _b, ...bPublic } = b;
    expect(listed).toEqual([
      { ...aPublic, lastUsedAt: null, disabled: false, disabledAt: null },
      { ...bPublic, lastUsedAt: null, disabled: false, disabledAt: null },
    ]);
    expect(JSON.parse((await run('keys', 'list', '--bucket', 'my-data', '--json')).stdout).map((k: { name: string }) => k.name)).toEqual(['beta']);

    const shown = await run('keys', 'show', b.accessKeyId);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/Name\s+beta/);
    expect(shown.stdout).toMatch(/Scope\s+bucket:my-data/);
    expect(shown.stdout).not.toContain('rs_sk_');
    expect(JSON.parse((await run('keys', 'show', b.accessKeyId, '--json')).stdout)).toEqual({
      ...bPublic,
      lastUsedAt: null,
      disabled: false,
      disabledAt: null,
    });

    const deleted = await run('keys', 'delete', a.accessKeyId);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`Deleted access key ${a.accessKeyId}`);
    const gone = await run('keys', 'show', a.accessKeyId);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/No access key .*keygate keys list/);
    const again = await run('keys', 'delete', a.accessKeyId);
    expect(again.code).toBe(1);
    expectNoStackTrace(again.stderr);
    expect(JSON.parse((await run('keys', 'list', '--json')).stdout)).toHaveLength(1);
  });

  it('disables and enables keys, and shows their state', async () => {
    const stateEnv = { ...env, KEYGATE_DATA_DIR: dirs.make() };
    const run = (...args: string[]) => runCliProcess(args, stateEnv);
    const b = JSON.parse((await run('keys', 'create', '--name', 'beta', '--bucket', 'my-data', '--preset', 'read-write', '--json')).stdout);
    const disabled = await run('keys', 'disable', b.accessKeyId);
    expect(disabled.code).toBe(0);
    expect(disabled.stdout).toContain(`Disabled access key ${b.accessKeyId} (beta)`);
    expect(disabled.stdout).toContain(`keygate keys enable ${b.accessKeyId}`);
    const disabledJson = JSON.parse((await run('keys', 'show', b.accessKeyId, '--json')).stdout);
    expect(disabledJson).toMatchObject({ disabled: true, disabledAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect((await run('keys', 'list')).stdout).toMatch(new RegExp(`${b.accessKeyId}\\s+beta\\s+disabled since \\d{4}-`));
    expect((await run('keys', 'show', b.accessKeyId)).stdout).toMatch(/State\s+disabled since/);
    // Disabling twice keeps the first time.
    await run('keys', 'disable', b.accessKeyId);
    expect(JSON.parse((await run('keys', 'show', b.accessKeyId, '--json')).stdout).disabledAt).toBe(disabledJson.disabledAt);
    const enabled = await run('keys', 'enable', b.accessKeyId);
    expect(enabled.code).toBe(0);
    expect(enabled.stdout).toContain(`Enabled access key ${b.accessKeyId}`);
    expect(JSON.parse((await run('keys', 'show', b.accessKeyId, '--json')).stdout)).toMatchObject({ disabled: false, disabledAt: null });
    const missing = await run('keys', 'disable', 'rs_ak_live_0000000000000000000000000000000000000000');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No access key/);
    expectNoStackTrace(missing.stderr);
    expect((await run('keys', 'enable', 'not-a-key')).code).toBe(2);
  });
});

describe('buckets', () => {
  it('adds, lists and removes buckets', async () => {
    const bucketEnv = { ...env, KEYGATE_DATA_DIR: dirs.make() };
    const run = (...args: string[]) => runCliProcess(args, bucketEnv);
    const added = await run('buckets', 'add', 'abc123xyz9', '--datacenter', 'eu-ro-1');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/Registered bucket abc123xyz9 -> RunPod EU-RO-1/);
    expect(added.stderr).toMatch(/RUNPOD_S3_ACCESS_KEY/);
    expect((await run('buckets', 'add', 'minio-data', '--endpoint', 'http://127.0.0.1:9000', '--region', 'us-east-1', '--upstream-bucket', 'real')).code).toBe(
      0,
    );

    const duplicate = await run('buckets', 'add', 'abc123xyz9', '--datacenter', 'US-KS-2');
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/already registered; remove it first/);

    const table = await run('buckets', 'list');
    expect(table.stdout).toMatch(/^NAME\s+UPSTREAM\s+UPSTREAM BUCKET\s+CREATED\n/);
    expect(table.stdout).toMatch(/abc123xyz9\s+RunPod EU-RO-1\s+abc123xyz9/);
    expect(table.stdout).toMatch(/minio-data\s+http:\/\/127\.0\.0\.1:9000 \(us-east-1\)\s+real/);

    const json = JSON.parse((await run('buckets', 'list', '--json')).stdout);
    expect(json).toEqual([
      expect.objectContaining({ name: 'abc123xyz9', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: 'abc123xyz9', cors: null }),
      expect.objectContaining({ name: 'minio-data', datacenter: null, endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', upstreamBucket: 'real' }),
    ]);

    await run('keys', 'create', '--name', 'scoped', '--bucket', 'minio-data', '--preset', 'read-only');
    const removed = await run('buckets', 'remove', 'minio-data');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/Removed bucket minio-data/);
    expect(removed.stdout).toMatch(/1 key scoped to minio-data remains/);
    const missing = await run('buckets', 'remove', 'minio-data');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not registered/);
    expect(JSON.parse((await run('buckets', 'list', '--json')).stdout).map((b: { name: string }) => b.name)).toEqual(['abc123xyz9']);
  });
});

describe('process-level behavior', () => {
  it('prints usage: no arguments exits 2, --help exits 0', async () => {
    const [none, help, keysHelp, bucketsHelp] = await Promise.all([
      keygate(),
      keygate('--help'),
      keygate('keys', '--help'),
      keygate('buckets', 'add', '--help'),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Usage:/);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/keygate serve/);
    expect(keysHelp.code).toBe(0);
    expect(keysHelp.stdout).toMatch(/--preset read-only\|read-write/);
    expect(bucketsHelp.code).toBe(0);
    expect(bucketsHelp.stdout).toMatch(/--datacenter DC/);
  });

  it('presign refuses unknown keys and bad targets with a message', async () => {
    const unknown = await keygate('presign', `rs_ak_live_${'0'.repeat(40)}`, 's3://bucket-one/k');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/No access key/);
    // Usage errors exit 2 and point at the help, like every other command's.
    const badTarget = await keygate('presign', `rs_ak_live_${'0'.repeat(40)}`, 'bucket-one/k');
    expect(badTarget.code).toBe(2);
    expect(badTarget.stderr).toMatch(/s3:\/\/BUCKET\/KEY/);
    expect(badTarget.stderr).toMatch(/Run `keygate presign --help` for usage/);
    const badMethod = await keygate('presign', `rs_ak_live_${'0'.repeat(40)}`, 's3://bucket-one/k', '--method', 'PATCH');
    expect(badMethod.code).toBe(2);
    expect(badMethod.stderr).toMatch(/GET, PUT, HEAD, DELETE, or POST/);
    const missing = await keygate('presign');
    expect(missing.code).toBe(2);
  });

  it('buckets sync imports RunPod network volumes (v2 REST shape) and keeps registered ones', async () => {
    const rest = http.createServer((req, res) => {
      if (req.url !== '/v2/network-volumes' || req.headers.authorization !== 'Bearer rp-test-key') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          networkVolumes: [
            { id: 'vol1abcdef', name: 'models', size: 50, dataCenter: 'EU-RO-1', type: 'NETWORK' },
            { id: 'vol2ghijkl', name: 'data', size: 10, dataCenter: 'US-KS-2', type: 'NETWORK' },
          ],
        }),
      );
    });
    await new Promise<void>((resolve) => rest.listen(0, '127.0.0.1', () => resolve()));
    const restUrl = `http://127.0.0.1:${(rest.address() as { port: number }).port}/v2`;
    try {
      const env = { RUNPOD_API_KEY: 'rp-test-key', KEYGATE_RUNPOD_REST_URL: restUrl };
      const first = await keygateWith(env, 'buckets', 'sync');
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/2 buckets added/);
      const listed = JSON.parse((await keygate('buckets', 'list', '--json')).stdout) as Array<{ name: string; datacenter: string | null }>;
      expect(listed).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'vol1abcdef', datacenter: 'EU-RO-1' }),
          expect.objectContaining({ name: 'vol2ghijkl', datacenter: 'US-KS-2' }),
        ]),
      );
      const again = await keygateWith(env, 'buckets', 'sync');
      expect(again.stdout).toMatch(/0 buckets added, 2 already registered/);
      const missingKey = await keygate('buckets', 'sync');
      expect(missingKey.code).toBe(1);
      expect(missingKey.stderr).toMatch(/RUNPOD_API_KEY/);
    } finally {
      rest.close();
    }
  });

  it.each([
    [{ KEYGATE_PORT: 'nine thousand' }, 'KEYGATE_PORT'],
    [{ KEYGATE_MASTER_KEY: 'too-short' }, 'KEYGATE_MASTER_KEY'],
    [{ KEYGATE_PUBLIC_URL: 'localhost' }, 'KEYGATE_PUBLIC_URL'],
  ])('bad configuration %j exits 78 naming %s', async (bad, variable) => {
    const result = await runCliProcess(['keys', 'list'], { ...env, ...bad });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`configuration error: ${variable}:`);
    expectNoStackTrace(result.stderr);
  });

  it('a wrong master key for an existing database exits 78', async () => {
    const result = await runCliProcess(['keys', 'list'], { ...env, KEYGATE_MASTER_KEY: '99'.repeat(32) });
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/KEYGATE_MASTER_KEY: does not match/);
  });

  // Needs root to act as another user (CI runs as root); the usual case is a Docker bind mount
  // owned by the host's user while the image runs as uid 1000.
  it.skipIf(process.getuid?.() !== 0)('a data dir another user owns: says which path, which user, and the chown that fixes it', async () => {
    const dir = dirs.make();
    chmodSync(dir, 0o700);
    const result = await run('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', CLI_ENTRY, 'keys', 'list'], {
      HOME: '/tmp',
      KEYGATE_DATA_DIR: dir,
      KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Data directory ${dir} is not writable by this process (uid 65534)`);
    expect(result.stderr).toContain('it belongs to uid 0');
    expect(result.stderr).toContain(`chown -R 65534:65534 ${dir}`);
    expectNoStackTrace(result.stderr);
  });

  it('warns when keygate.db is empty next to an existing master key (a lost store, not a new one)', async () => {
    const dir = dirs.make();
    writeFileSync(path.join(dir, 'master.key'), `${TEST_MASTER_KEY_HEX}\n`, { mode: 0o600 });
    writeFileSync(path.join(dir, 'keygate.db'), '');
    const result = await runCliProcess(['keys', 'list'], { KEYGATE_DATA_DIR: dir });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/warning: .*keygate\.db is empty \(0 bytes\) but .*master\.key exists/);
    // A fresh install (no master key yet) says nothing.
    const fresh = await runCliProcess(['keys', 'list'], { KEYGATE_DATA_DIR: dirs.make() });
    expect(fresh.stderr).not.toMatch(/warning/);
  });

  it('an unusable data dir exits 1 naming KEYGATE_DATA_DIR', async () => {
    const file = path.join(dirs.make(), 'a-file');
    writeFileSync(file, '');
    const result = await runCliProcess(['keys', 'list'], { ...env, KEYGATE_DATA_DIR: path.join(file, 'data') });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/KEYGATE_DATA_DIR/);
    expectNoStackTrace(result.stderr);
  });
});

describe('serve', () => {
  it('generates and prints the admin token once, serves the admin API, stops on SIGTERM', async () => {
    const dataDir = dirs.make();
    const adminPort = await freePort();
    const serveEnv = {
      KEYGATE_DATA_DIR: dataDir,
      KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
      KEYGATE_ADMIN_PORT: String(adminPort),
      KEYGATE_PORT: String(await freePort()),
    };
    const first = await runServe(serveEnv, adminPort);
    const token = /^ {2}([A-Za-z0-9_-]{43})$/m.exec(first.stdout)?.[1];
    expect(token).toBeDefined();
    expect(readFileSync(path.join(dataDir, 'admin-token.sha256'), 'utf8')).not.toContain(token!);
    expect(first.code).toBe(0);
    expect(first.authorized).toBe(200);
    expect(first.unauthorized).toBe(401);

    // Second start: no new token, the first one still works.
    const second = await runServe(serveEnv, adminPort, token);
    expect(second.stdout).not.toMatch(/Generated an admin API token/);
    expect(second.authorized).toBe(200);
    expect(second.code).toBe(0);
  });
  it('a start that cannot bind its port shows and stores no admin token, so the next start still shows it', async () => {
    const dataDir = dirs.make();
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const takenPort = (blocker.address() as { port: number }).port;
    try {
      const failed = await runCliProcess(['serve'], {
        KEYGATE_DATA_DIR: dataDir,
        KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
        KEYGATE_HOST: '127.0.0.1',
        KEYGATE_PORT: String(takenPort),
        KEYGATE_ADMIN_PORT: String(await freePort()),
      });
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toMatch(/already in use/);
      expect(failed.stdout).not.toMatch(/Generated an admin API token/);
    } finally {
      blocker.close();
    }
    const adminPort = await freePort();
    const started = await runServe(
      { KEYGATE_DATA_DIR: dataDir, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_ADMIN_PORT: String(adminPort), KEYGATE_PORT: String(await freePort()) },
      adminPort,
    );
    expect(started.stdout).toMatch(/Generated an admin API token/);
    expect(started.authorized).toBe(200);
  });

  it('derives the default public URL from KEYGATE_PORT, says it is a default, and warns when no upstream is configured', async () => {
    const adminPort = await freePort();
    const port = await freePort();
    const started = await runServe(
      { KEYGATE_DATA_DIR: dirs.make(), KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_ADMIN_PORT: String(adminPort), KEYGATE_PORT: String(port) },
      adminPort,
    );
    expect(started.stdout).toContain(`public URL http://localhost:${port} (the default: clients on other hosts or behind a proxy need KEYGATE_PUBLIC_URL)`);
    expect(started.stdout).toMatch(/warning: no upstream is configured/);
    const explicit = await runServe(
      {
        KEYGATE_DATA_DIR: dirs.make(),
        KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
        KEYGATE_ADMIN_PORT: String(adminPort),
        KEYGATE_PORT: String(port),
        KEYGATE_PUBLIC_URL: 'https://s3.example.com',
        KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:1',
        KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a',
        KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'b',
      },
      adminPort,
    );
    expect(explicit.stdout).toMatch(/^public URL https:\/\/s3\.example\.com$/m);
    expect(explicit.stdout).not.toMatch(/warning:/);
  });
});

/** Starts `keygate serve`, waits for /health, probes auth, then SIGTERMs it. */
async function runServe(serveEnv: Record<string, string>, adminPort: number, knownToken?: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...serveEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const base = `http://127.0.0.1:${adminPort}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`serve exited early:\n${stdout}\n${stderr}`);
      const ok = await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`serve did not start:\n${stdout}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const token = knownToken ?? /^ {2}([A-Za-z0-9_-]{43})$/m.exec(stdout)?.[1] ?? '';
    const authorized = (await fetch(`${base}/v1/keys`, { headers: { authorization: `Bearer ${token}` } })).status;
    const unauthorized = (await fetch(`${base}/v1/keys`, { headers: { authorization: 'Bearer wrong' } })).status;
    child.kill('SIGTERM');
    const code = await exited;
    return { stdout, stderr, code, authorized, unauthorized };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
