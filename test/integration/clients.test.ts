/**
 * Real clients against a real gateway process in front of real S3 servers: every client must work
 * exactly as it does against S3 (put/get/head/list/copy/delete/multipart/range/sync, awkward keys).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEBIAN_AWS,
  DEBIAN_PYTHON,
  PYENV_AWS,
  PYENV_PYTHON,
  awsEnv,
  debianClientsPresent,
  rcloneEnv,
  run,
  runOk,
  s3cmdConfig,
  tempHome,
  type Credentials,
  listTree,
  writeTree,
} from '../helpers/clients.js';
import { REPO_ROOT, startGateway, upstreamEnv, type Gateway } from '../helpers/gateway.js';
import { startMoto, startS3rver } from '../helpers/upstreams.js';

const BOTO3_SCENARIO = path.join(REPO_ROOT, 'test/clients/boto3_scenario.py');
const BUCKET = 'clients-bucket';

if (process.env.CI && !debianClientsPresent()) {
  throw new Error('Debian clients (awscli, python3-boto3, rclone, s3cmd) are missing; .ci/run installs them.');
}
const describeDebian = debianClientsPresent() ? describe : describe.skip;

type Upstream = Awaited<ReturnType<typeof startS3rver>>;

for (const upstreamKind of ['s3rver', 'moto (validating signatures)'] as const) {
  describe(`real clients through keygate to ${upstreamKind}`, () => {
    let upstream: Upstream;
    let gateway: Gateway;
    let credentials: Credentials;

    beforeAll(async () => {
      upstream = upstreamKind === 's3rver' ? await startS3rver() : await startMoto({ validateSignatures: true });
      await upstream.createBucket(BUCKET);
      gateway = await startGateway(upstreamEnv(upstream));
      const key = await gateway.createKey({ name: 'clients', permissions: ['read', 'write', 'delete'] });
      credentials = { endpoint: gateway.url, region: key.region, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
    });

    afterAll(async () => {
      await gateway?.stop();
      await upstream?.stop();
    });

    const boto3 = (python: string, prefix: string) =>
      runOk(python, [
        BOTO3_SCENARIO,
        credentials.endpoint,
        credentials.region,
        credentials.accessKeyId,
        credentials.secretAccessKey,
        BUCKET,
        prefix,
        ...(upstreamKind === 's3rver' ? ['no-double-slash', 'no-list-parts'] : []),
      ]);

    it('boto3 (pyenv, recent) runs the whole scenario', async () => {
      expect(await boto3(PYENV_PYTHON, 'boto3-pyenv/')).toContain('OK boto3');
    });

    describeDebian('Debian packages', () => {
      it('boto3 (Debian python3-boto3) runs the whole scenario', async () => {
        expect(await boto3(DEBIAN_PYTHON, 'boto3-debian/')).toContain('OK boto3');
      });

      it('aws-cli v2 (Debian) copies, syncs, lists and removes', async () => {
        await awsCliScenario(DEBIAN_AWS, credentials, 'awscli-v2/');
      });

      it('rclone copies, syncs, checks and deletes', async () => {
        await rcloneScenario(credentials, 'rclone/');
      });

      it('s3cmd puts, gets (verifying MD5), syncs and deletes', async () => {
        await s3cmdScenario(credentials, 's3cmd/', upstreamKind === 's3rver');
      });
    });

    it('aws-cli v1 (pyenv) copies, syncs, lists and removes', async () => {
      await awsCliScenario(PYENV_AWS, credentials, 'awscli-v1/');
    });
  });
}

/** Local files with awkward names and one file large enough for multipart (> 8 MiB default threshold). */
function makeTree(home: string): { dir: string; files: Record<string, Buffer> } {
  return writeTree(home, {
    'plain.txt': Buffer.from('hello keygate\n'),
    'unicode ✓ é/файл.txt': Buffer.from('unicode content'),
    'space and+plus=eq.txt': Buffer.from('odd names'),
    'big.bin': randomBytes(12 * 1024 * 1024 + 17),
  });
}

async function awsCliScenario(aws: string, credentials: Credentials, prefix: string): Promise<void> {
  const home = tempHome();
  const env = awsEnv(credentials, home);
  const base = ['--endpoint-url', credentials.endpoint];
  const { dir, files } = makeTree(home);
  const remote = `s3://${BUCKET}/${prefix}`;

  await runOk(aws, ['s3', 'cp', path.join(dir, 'big.bin'), `${remote}big.bin`, ...base], env);
  await runOk(aws, ['s3', 'sync', dir, `${remote}tree/`, ...base], env);
  const listing = await runOk(aws, ['s3', 'ls', '--recursive', `${remote}tree/`, ...base], env);
  for (const name of Object.keys(files)) expect(listing).toContain(name);

  const back = path.join(home, 'back');
  await runOk(aws, ['s3', 'sync', `${remote}tree/`, back, ...base], env);
  expect(listTree(back).sort()).toEqual(Object.keys(files).sort());
  for (const [name, content] of Object.entries(files)) expect(readFileSync(path.join(back, name)).equals(content)).toBe(true);

  // server-side copy and a ranged read through s3api
  await runOk(aws, ['s3', 'cp', `${remote}tree/unicode ✓ é/файл.txt`, `${remote}copied ✓.txt`, ...base], env);
  const rangeOut = path.join(home, 'range.out');
  await runOk(aws, ['s3api', 'get-object', '--bucket', BUCKET, '--key', `${prefix}big.bin`, '--range', 'bytes=100-199', rangeOut, ...base], env);
  expect(readFileSync(rangeOut).equals(files['big.bin']!.subarray(100, 200))).toBe(true);
  const head = JSON.parse(await runOk(aws, ['s3api', 'head-object', '--bucket', BUCKET, '--key', `${prefix}copied ✓.txt`, ...base], env));
  expect(head.ContentLength).toBe(files['unicode ✓ é/файл.txt']!.length);

  await runOk(aws, ['s3', 'rm', '--recursive', remote, ...base], env);
  const after = await run(aws, ['s3', 'ls', '--recursive', remote, ...base], env);
  expect(after.stdout.trim()).toBe('');
}

async function rcloneScenario(credentials: Credentials, prefix: string): Promise<void> {
  const home = tempHome();
  const env = rcloneEnv(credentials, home);
  const { dir, files } = makeTree(home);
  const remote = `kg:${BUCKET}/${prefix}`;
  // --s3-no-check-bucket: scoped keys may not create buckets. --s3-no-head: rclone 1.60 HEADs new
  // objects with ?versionId=null, which moto rejects (S3 accepts it).
  const flags = ['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', '--retries', '1', '--s3-no-check-bucket', '--s3-no-head'];

  await runOk('rclone', ['sync', dir, remote, ...flags], env);
  await runOk('rclone', ['check', dir, remote, ...flags], env);
  const listed = await runOk('rclone', ['lsf', '-R', '--files-only', remote], env);
  expect(listed.trim().split('\n').sort()).toEqual(Object.keys(files).sort());
  expect(await runOk('rclone', ['cat', `${remote}space and+plus=eq.txt`], env)).toBe('odd names');

  const back = path.join(home, 'back');
  await runOk('rclone', ['copy', remote, back, ...flags], env);
  for (const [name, content] of Object.entries(files)) expect(readFileSync(path.join(back, name)).equals(content)).toBe(true);

  await runOk('rclone', ['copyto', `${remote}plain.txt`, `${remote}plain-copy.txt`, ...flags], env);
  await runOk('rclone', ['purge', remote], env);
  expect((await runOk('rclone', ['lsf', '-R', remote], env)).trim()).toBe('');
}

/** `skipCopy` for s3rver, whose CopyObject answer s3cmd cannot parse (also without the gateway). */
async function s3cmdScenario(credentials: Credentials, prefix: string, skipCopy = false): Promise<void> {
  const home = tempHome();
  const config = s3cmdConfig(credentials, home);
  const { dir, files } = makeTree(home);
  const s3cmd = (...args: string[]) => runOk('s3cmd', ['-c', config, ...args], { HOME: home });
  const remote = `s3://${BUCKET}/${prefix}`;

  await s3cmd('put', path.join(dir, 'plain.txt'), `${remote}plain.txt`);
  await s3cmd('put', path.join(dir, 'big.bin'), `${remote}big.bin`); // multipart (5 MiB chunks)
  await s3cmd('sync', `${dir}/`, `${remote}tree/`);
  const listing = await s3cmd('ls', '--recursive', remote);
  for (const name of Object.keys(files)) expect(listing).toContain(`tree/${name}`);

  const got = path.join(home, 'got.bin');
  await s3cmd('get', '--force', `${remote}big.bin`, got); // s3cmd compares MD5 against the ETag for single-part objects
  expect(createHash('md5').update(readFileSync(got)).digest('hex')).toBe(createHash('md5').update(files['big.bin']!).digest('hex'));
  await s3cmd('get', '--force', `${remote}plain.txt`, path.join(home, 'plain.txt'));
  expect(readFileSync(path.join(home, 'plain.txt'), 'utf8')).toBe('hello keygate\n');

  if (!skipCopy) await s3cmd('cp', `${remote}plain.txt`, `${remote}plain-copy.txt`);
  await s3cmd('del', '--recursive', '--force', remote);
  expect((await s3cmd('ls', '--recursive', remote)).trim()).toBe('');
}
