/**
 * The CLI dispatcher in-process (runCli with captured output) for the long tables of argument
 * errors; cli.test.ts covers the same binary end to end in child processes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import type { CliIo } from '../../src/cli/io.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, TEST_MASTER_KEY_HEX, makeTempDirs } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();
afterAll(() => dirs.cleanup());
const dataDir = dirs.make();

async function run(args: string[], extraEnv: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env: { KEYGATE_DATA_DIR: dataDir, KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, ...extraEnv },
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

describe('usage errors exit 2 with a message and a pointer to help', () => {
  it.each([
    [['keys', 'create', '--name', 'x', '--bucket', 'my-data', '--perm', 'read,admin'], /cannot have admin/],
    [['keys', 'create', '--name', 'x', '--bucket', 'my-data', '--perm', 'admin'], /cannot have admin/],
    [['keys', 'create', '--name', 'x', '--bucket', 'my-data', '--perm', 'read,write,delete'], /cannot delete/],
    [['keys', 'create', '--name', 'x', '--bucket', 'my-data', '--perm', 'write'], /--preset read-only or --preset read-write/],
    [['keys', 'create', '--name', 'x', '--perm', 'read,sudo'], /Unknown permission "sudo"/],
    [['keys', 'create', '--name', 'x', '--perm', ''], /must not be empty/],
    [['keys', 'create', '--name', 'x', '--preset', 'everything'], /Unknown preset/],
    [['keys', 'create', '--name', 'x', '--bucket', 'Bad_Bucket', '--preset', 'read-only'], /Bucket name/],
    [['keys', 'create', '--name', 'x', '--bucket', '10.1.2.3', '--preset', 'read-only'], /IP address/],
    [['keys', 'create', '--name', 'x', '--preset', 'read-only', '--expires-in', 'never'], /30d, 12h/],
    [['keys', 'create', '--name', 'x', '--preset', 'read-only', '--expires-in', '0'], /positive/],
    [['keys', 'create', '--name', 'x', '--preset', 'read-only', '--expires-in', '20000d'], /10 years/],
    [['keys', 'create', '--name', '', '--preset', 'read-only'], /name is required/],
    [['keys', 'create', '--name', 'x'.repeat(129), '--preset', 'read-only'], /128/],
    [['keys', 'create', '--name', 'x'], /--perm .* or --preset/],
    [['keys', 'create', '--name', 'x', '--perm', 'read', '--preset', 'read-only'], /either --perm or --preset/],
    [['keys', 'create', '--preset', 'read-only'], /Missing --name/],
    [['keys', 'create', '--name', 'x', '--preset', 'read-only', '--admin'], /Unknown option '--admin'/],
    [['keys', 'create', '--name'], /argument missing/],
    [['keys', 'create', '--name', 'x', '--json=yes', '--preset', 'read-only'], /does not take an argument/],
    [['keys', 'create', 'extra', '--name', 'x', '--preset', 'read-only'], /Unexpected argument "extra"/],
    [['keys', 'rotate'], /Unknown command "keys rotate"/],
    [['keys', 'list', 'extra'], /Unexpected argument/],
    [['keys', 'show'], /Missing ACCESS_KEY_ID/],
    [['keys', 'show', 'not-an-id'], /not an access key id/],
    [['keys', 'delete'], /Missing ACCESS_KEY_ID/],
    [['keys', 'delete', 'rs_ak_live_123'], /not an access key id/],
    [['frobnicate'], /Unknown command "frobnicate"/],
    [['buckets', 'add'], /Missing NAME/],
    [['buckets', 'add', 'a', 'b'], /Unexpected argument "b"/],
    [['buckets', 'add', 'ok-name', '--endpoint', 'http://127.0.0.1:9'], /--endpoint needs --region/],
    [['buckets', 'add', 'ok-name', '--region', 'us-east-1'], /--region is only used with --endpoint/],
    [['buckets', 'add', 'ok-name', '--datacenter', 'EU-RO-1', '--region', 'x'], /either --datacenter or --endpoint/],
    [['buckets', 'add', 'ok-name', '--endpoint', 'ftp://x', '--region', 'us-east-1'], /http/],
    [['buckets', 'add', 'UPPER'], /lowercase/],
    [['buckets', 'add', 'ok-name', '--dc', 'EU-RO-1'], /Unknown option '--dc'/],
    [['buckets', 'remove'], /Missing NAME/],
    [['buckets', 'purge'], /Unknown command "buckets purge"/],
    [['serve', 'now'], /Unexpected argument "now"/],
  ])('%j', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/\nRun `keygate [a-z ]*--help` for usage\.\n$/);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(result.stdout).toBe('');
  });
});

describe('in-process results', () => {
  it('nothing was stored by the rejected commands above', async () => {
    const listed = await run(['keys', 'list', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);
    expect(JSON.parse((await run(['buckets', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('creates a key with repeated and comma-separated --perm', async () => {
    const result = await run(['keys', 'create', '--name', 'combo', '--perm', 'write', '--perm', 'read,admin', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).permissions).toEqual(['read', 'write', 'admin']);
  });

  it('shows expired keys as expired', async () => {
    const created = JSON.parse((await run(['keys', 'create', '--name', 'brief', '--preset', 'read-only', '--expires-in', '1s', '--json'])).stdout);
    await new Promise((r) => setTimeout(r, 1100));
    const shown = await run(['keys', 'show', created.accessKeyId]);
    expect(shown.stdout).toMatch(/Expires\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(expired\)/);
  });

  it('uses a placeholder bucket in the boto3 snippet for workspace keys', async () => {
    const result = await run(['keys', 'create', '--name', 'ws', '--preset', 'read-only']);
    expect(result.stdout).toContain('print(s3.list_objects_v2(Bucket="YOUR_BUCKET").get("KeyCount"))');
  });

  it('omits the path-style boto3 config when virtual-host addressing is enabled', async () => {
    const result = await run(['keys', 'create', '--name', 'vh', '--preset', 'read-only'], { KEYGATE_DOMAIN: 's3.example.com' });
    expect(result.stdout).toContain('boto3.client(');
    expect(result.stdout).not.toContain('addressing_style');
  });

  it('reports configuration errors with exit 78', async () => {
    const result = await run(['keys', 'list'], { KEYGATE_KEY_TAG: 'NOPE' });
    expect(result.code).toBe(78);
    expect(result.stderr).toBe('keygate: configuration error: KEYGATE_KEY_TAG: "NOPE" must be 1-16 lowercase letters or digits, e.g. "live" or "test".\n');
  });

  it('prints the version', async () => {
    const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `keygate ${version}\n`, stderr: '' });
  });
});
