/**
 * The client matrix for per-bucket keys: each real client's everyday operations through a key
 * scoped to one bucket, against s3rver and moto. Per client, with a `read-write` key on MINE:
 * the operations work byte-exactly (multipart included); the same operations on OTHER (which exists
 * upstream and is registered in the gateway) answer AccessDenied and write nothing there; deletes
 * answer AccessDenied (per-bucket presets never include `delete`). With a `read-only` key on MINE,
 * reads and listings work and writes answer AccessDenied. What was or was not written is checked
 * on the upstream directly, not through the gateway; which operations the gateway answered how
 * (multipart parts, the refused write or delete) is read from its access log.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type * as Minio from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEBIAN_AWS,
  PYENV_PYTHON,
  awsEnv,
  debianClientsPresent,
  rcloneEnv,
  run,
  runOk,
  s3cmdConfig,
  tempHome,
  type Credentials,
  type RunResult,
  listTree,
  writeTree,
} from '../helpers/clients.js';
import { BATCH_FLUSH_DELAY_MS } from '../../src/observability/access-log.js';
import { REPO_ROOT, startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { gatewayMinioClient, gatewayS3Client } from '../helpers/sdk.js';
import { startMoto, startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BOTO3_UPLOAD_FILEOBJ = path.join(REPO_ROOT, 'test/clients/boto3_upload_fileobj.py');
const MINE = 'matrix-mine';
const OTHER = 'matrix-other';
const SEED = 'seed.txt';
const SEED_CONTENT = 'seeded upstream, never to change';
const MiB = 1024 * 1024;
/** Slow clients (Python start-up, 12 MiB through moto) on a loaded 2-core machine. */
const CLIENT_TIMEOUT = 120_000;

if (process.env.CI && !debianClientsPresent()) {
  throw new Error('Debian clients (awscli, python3-boto3, rclone, s3cmd) are missing; .ci/run installs them.');
}
const describeDebian = debianClientsPresent() ? describe : describe.skip;

interface Tree {
  dir: string;
  files: Record<string, Buffer>;
}

/**
 * A small file, a nested one, and one large enough for every client that does multipart to go
 * multipart (> 8 MiB, 5 MiB parts). Plain ASCII names: awkward keys are clients.test.ts's business.
 */
function makeTree(home: string): Tree {
  return writeTree(home, {
    'small.txt': Buffer.from(`small ${randomBytes(8).toString('hex')}\n`),
    'docs/readme.txt': Buffer.from(`nested ${randomBytes(8).toString('hex')}\n`),
    'big.bin': randomBytes(12 * MiB + 17),
  });
}

function expectSameTree(dir: string, files: Record<string, Buffer>): void {
  expect(listTree(dir).sort()).toEqual(Object.keys(files).sort());
  for (const [name, content] of Object.entries(files)) expect(readFileSync(path.join(dir, name)).equals(content), name).toBe(true);
}

function crc32Base64(data: Buffer): string {
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(data));
  return checksum.toString('base64');
}

const withPrefix = (prefix: string, names: string[]) => names.map((name) => `${prefix}${name}`).sort();

/** A command-line client's refusal: non-zero exit, and the S3 error code (not just any failure) in its output. */
function expectDenied(result: RunResult, what: string, answer = /AccessDenied/): void {
  const output = `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  expect(result.code, `${what} should fail\n${output}`).not.toBe(0);
  expect(`${result.stdout}\n${result.stderr}`, `${what} should fail with ${answer}\n${output}`).toMatch(answer);
}

/** What an SDK call threw (or 'no error'), to match against the S3 error it should be. */
async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return 'no error';
}

/** One line of the gateway's JSON access log (src/observability/access-log.ts). */
interface Logged {
  requestId: string;
  accessKeyId: string;
  operation: string | null;
  bucket: string | null;
  key: string | null;
  status: number;
  errorCode: string | null;
}

const sdkAccessDenied = { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } };

for (const upstreamKind of ['s3rver', 'moto (validating signatures)'] as const) {
  describe(`client matrix through per-bucket keys to ${upstreamKind}`, () => {
    let upstream: TestUpstream;
    let gateway: Gateway;
    let readWriteKey: CreatedKey;
    let readOnlyKey: CreatedKey;
    let readWrite: Credentials;
    let readOnly: Credentials;

    beforeAll(async () => {
      upstream = upstreamKind === 's3rver' ? await startS3rver() : await startMoto({ validateSignatures: true });
      for (const bucket of [MINE, OTHER]) await upstream.createBucket(bucket);
      const seeded = await upstream.request('PUT', `/${OTHER}/${SEED}`, { body: SEED_CONTENT });
      expect(seeded.status).toBe(200);
      gateway = await startGateway(upstreamEnv(upstream));
      for (const bucket of [MINE, OTHER]) await gateway.addBucket({ name: bucket });
      readWriteKey = await gateway.createKey({ name: 'matrix-rw', bucket: MINE, preset: 'read-write' });
      readOnlyKey = await gateway.createKey({ name: 'matrix-ro', bucket: MINE, preset: 'read-only' });
      expect([readWriteKey.bucket, readWriteKey.permissions]).toEqual([MINE, ['read', 'write']]);
      expect([readOnlyKey.bucket, readOnlyKey.permissions]).toEqual([MINE, ['read']]);
      const credentials = (key: CreatedKey): Credentials => ({
        endpoint: gateway.url,
        region: key.region,
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
      });
      [readWrite, readOnly] = [credentials(readWriteKey), credentials(readOnlyKey)];
    });

    afterAll(async () => {
      await gateway?.stop();
      await upstream?.stop();
    });

    /** The object keys the upstream itself holds under a prefix (bypassing the gateway). */
    async function upstreamKeys(bucket: string, prefix: string): Promise<string[]> {
      const answer = await upstream.request('GET', `/${bucket}`, { query: `list-type=2&prefix=${encodeURIComponent(prefix)}` });
      expect(answer.status, answer.body.toString()).toBe(200);
      return [...answer.body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1]!).sort();
    }

    /** An object's bytes as the upstream stores them. */
    async function upstreamObject(bucket: string, key: string): Promise<Buffer> {
      const answer = await upstream.request('GET', `/${bucket}/${key}`);
      expect(answer.status, `${bucket}/${key}: ${answer.body.toString().slice(0, 500)}`).toBe(200);
      return answer.body;
    }

    /** The upstream holds exactly these files under the prefix, byte for byte. */
    async function expectStored(prefix: string, files: Record<string, Buffer>): Promise<void> {
      expect(await upstreamKeys(MINE, prefix)).toEqual(withPrefix(prefix, Object.keys(files)));
      for (const [name, content] of Object.entries(files)) {
        const stored = await upstreamObject(MINE, `${prefix}${name}`);
        expect(stored.length, name).toBe(content.length);
        expect(stored.equals(content), `${name} stored byte-exactly`).toBe(true);
      }
    }

    /** Nothing under the prefix in this bucket, and the seed in OTHER untouched. */
    async function expectNothingWritten(bucket: string, prefix: string): Promise<void> {
      expect(await upstreamKeys(bucket, prefix), `${bucket}/${prefix}`).toEqual([]);
      expect((await upstreamObject(OTHER, SEED)).toString()).toBe(SEED_CONTENT);
    }

    /** The gateway's access log: one line per S3 request, written once the answer is sent. */
    function accessLog(): Logged[] {
      return gateway
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes('"type":"access"'))
        .map((line) => JSON.parse(line) as Logged);
    }

    /** "Operation status errorCode" for each request the gateway logged for one object. */
    const loggedFor = (bucket: string, key: string) =>
      accessLog()
        .filter((record) => record.bucket === bucket && record.key === key)
        .map((record) => `${record.operation} ${record.status}${record.errorCode ? ` ${record.errorCode}` : ''}`);

    /** The client went multipart through the gateway for this object (log lines may trail the client's exit). */
    async function expectMultipartLogged(key: string, parts: number): Promise<void> {
      await expect.poll(() => loggedFor(MINE, key).filter((line) => line === 'CompleteMultipartUpload 200').length).toBe(1);
      const lines = loggedFor(MINE, key);
      expect(
        lines.filter((line) => line === 'CreateMultipartUpload 200'),
        key,
      ).toHaveLength(1);
      expect(
        lines.filter((line) => line === 'UploadPart 200'),
        key,
      ).toHaveLength(parts);
    }

    /** A write that reached the gateway as this operation and was refused there. */
    async function expectDeniedLogged(bucket: string, key: string, operation: string): Promise<void> {
      await expect.poll(() => loggedFor(bucket, key)).toContain(`${operation} 403 AccessDenied`);
    }

    /**
     * Whatever the clients sent so far: nothing on OTHER, no delete, and no write with the
     * read-only key got anything but 403 AccessDenied from the gateway.
     */
    async function expectLogWithinScope(): Promise<void> {
      // Lines are written in batches (BATCH_FLUSH_DELAY_MS): wait until the last request's is out.
      await new Promise((resolve) => setTimeout(resolve, BATCH_FLUSH_DELAY_MS + 200));
      const log = accessLog();
      const refused = (record: Logged) => record.status === 403 && record.errorCode === 'AccessDenied';
      expect(log.filter((record) => record.bucket === OTHER && !refused(record))).toEqual([]);
      expect(log.filter((record) => /^Delete/.test(record.operation ?? '') && !refused(record))).toEqual([]);
      const reads = ['ListObjects', 'ListObjectsV2', 'ListMultipartUploads', 'HeadObject', 'GetObject', 'HeadBucket', 'GetBucketLocation'];
      expect(log.filter((record) => record.accessKeyId === readOnlyKey.accessKeyId && !reads.includes(record.operation ?? '') && !refused(record))).toEqual([]);
    }

    // ---------------------------------------------------------------------------------------------
    // JS SDKs and boto3 (no Debian packages needed)

    it('AWS JS SDK lib-storage Upload (multipart) through a per-bucket key; other bucket and read-only writes denied', async () => {
      const prefix = 'lib-storage/';
      const big = randomBytes(12 * MiB + 17);
      const upload = (s3: S3Client, Bucket: string, Key: string) => new Upload({ client: s3, params: { Bucket, Key, Body: big }, partSize: 5 * MiB }).done();
      const rw = gatewayS3Client(gateway.url, readWriteKey);
      const ro = gatewayS3Client(gateway.url, readOnlyKey);
      try {
        await upload(rw, MINE, `${prefix}big.bin`);
        await expectMultipartLogged(`${prefix}big.bin`, 3);
        await expectStored(prefix, { 'big.bin': big });
        for (const s3 of [rw, ro]) {
          const got = await s3.send(new GetObjectCommand({ Bucket: MINE, Key: `${prefix}big.bin` }));
          expect(Buffer.from(await got.Body!.transformToByteArray()).equals(big)).toBe(true);
          const listed = await s3.send(new ListObjectsV2Command({ Bucket: MINE, Prefix: prefix }));
          expect((listed.Contents ?? []).map((o) => [o.Key, o.Size])).toEqual([[`${prefix}big.bin`, big.length]]);
        }

        expect(await errorOf(upload(rw, OTHER, `${prefix}big.bin`))).toMatchObject(sdkAccessDenied);
        expect(await errorOf(rw.send(new ListObjectsV2Command({ Bucket: OTHER, Prefix: prefix })))).toMatchObject(sdkAccessDenied);
        await expectDeniedLogged(OTHER, `${prefix}big.bin`, 'CreateMultipartUpload');
        await expectNothingWritten(OTHER, prefix);

        expect(await errorOf(upload(ro, MINE, `${prefix}by-read-only.bin`))).toMatchObject(sdkAccessDenied);
        await expectDeniedLogged(MINE, `${prefix}by-read-only.bin`, 'CreateMultipartUpload');
        await expectNothingWritten(MINE, `${prefix}by-read-only`);
        await expectLogWithinScope();
      } finally {
        rw.destroy();
        ro.destroy();
      }
    });

    // minio-js sends files under its part size (64 MiB) in one PUT. Its multipart path cannot run
    // against these upstreams, also without the gateway: it starts with ListMultipartUploads, which
    // s3rver does not implement, and moto answers CompleteMultipartUpload with a
    // <CompleteMultipartUploadResponse> root that minio-js cannot parse (it expects ...Result).
    it('minio-js fPutObject/listObjectsV2 through a per-bucket key; other bucket and read-only writes denied', async () => {
      const prefix = 'minio/';
      const home = tempHome();
      const { dir, files } = makeTree(home);
      const minio = (key: CreatedKey) => gatewayMinioClient(gateway.url, key);
      const list = async (client: Minio.Client, bucket: string, listPrefix: string) => {
        const names: string[] = [];
        for await (const item of client.listObjectsV2(bucket, listPrefix, true)) names.push((item as { name: string }).name);
        return names.sort();
      };
      const [rw, ro] = [minio(readWriteKey), minio(readOnlyKey)];
      try {
        for (const name of Object.keys(files)) await rw.fPutObject(MINE, `${prefix}${name}`, path.join(dir, name));
        await expectStored(prefix, files);
        for (const client of [rw, ro]) {
          expect(await list(client, MINE, prefix)).toEqual(withPrefix(prefix, Object.keys(files)));
          const back = path.join(home, `back-${client === rw ? 'rw' : 'ro'}.bin`);
          await client.fGetObject(MINE, `${prefix}big.bin`, back);
          expect(readFileSync(back).equals(files['big.bin']!)).toBe(true);
        }

        for (const name of ['small.txt', 'big.bin']) {
          expect(await errorOf(rw.fPutObject(OTHER, `${prefix}${name}`, path.join(dir, name)))).toMatchObject({ code: 'AccessDenied' });
        }
        expect(await errorOf(list(rw, OTHER, prefix))).toMatchObject({ code: 'AccessDenied' });
        await expectDeniedLogged(OTHER, `${prefix}big.bin`, 'PutObject');
        await expectNothingWritten(OTHER, prefix);

        for (const name of ['small.txt', 'big.bin']) {
          expect(await errorOf(ro.fPutObject(MINE, `${prefix}ro/${name}`, path.join(dir, name)))).toMatchObject({ code: 'AccessDenied' });
        }
        await expectDeniedLogged(MINE, `${prefix}ro/big.bin`, 'PutObject');
        await expectNothingWritten(MINE, `${prefix}ro/`);
        await expectLogWithinScope();
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });

    it('boto3 upload_fileobj with default CRC32 checksums through a per-bucket key; other bucket and read-only writes denied', async () => {
      const prefix = 'boto3/';
      const home = tempHome();
      const { dir, files } = makeTree(home);
      const boto3 = async (credentials: Credentials, steps: string[][]) => {
        const out = await runOk(PYENV_PYTHON, [
          BOTO3_UPLOAD_FILEOBJ,
          credentials.endpoint,
          credentials.region,
          credentials.accessKeyId,
          credentials.secretAccessKey,
          JSON.stringify(steps),
        ]);
        return JSON.parse(out) as {
          config: { boto3: string; requestChecksumCalculation: string | null };
          results: { ok: boolean; code?: string; status?: number; keys?: string[] }[];
          requests: { operation: string; checksumHeaders: string[]; sdkChecksumAlgorithm: string | null; trailer: string | null }[];
        };
      };
      const denied = { ok: false, code: 'AccessDenied', status: 403 };
      try {
        const names = Object.keys(files);
        const written = await boto3(readWrite, [
          ...names.map((name) => ['upload', MINE, `${prefix}${name}`, path.join(dir, name)]),
          ['list', MINE, prefix],
          ...names.map((name) => ['upload', OTHER, `${prefix}${name}`, path.join(dir, name)]),
          ['list', OTHER, prefix],
        ]);
        // A boto3 recent enough to checksum every upload by default, and it did: CRC32 on each PUT and part.
        expect(written.config.requestChecksumCalculation).toBe('when_supported');
        // Small files are one PutObject each, big.bin three parts; of the denied uploads to OTHER
        // only the PutObjects are sent (big.bin stops at CreateMultipartUpload).
        const uploads = written.requests.filter((r) => r.operation === 'PutObject' || r.operation === 'UploadPart');
        const count = (operation: string) => uploads.filter((r) => r.operation === operation).length;
        expect([count('PutObject'), count('UploadPart')]).toEqual([4, 3]);
        for (const request of uploads) expect(request.checksumHeaders.concat(request.trailer ?? []), request.operation).toContain('x-amz-checksum-crc32');
        expect(written.requests.find((r) => r.operation === 'CreateMultipartUpload')?.checksumHeaders).toContain('x-amz-checksum-algorithm');

        expect(written.results).toEqual([
          ...names.map(() => ({ ok: true })),
          { ok: true, keys: withPrefix(prefix, names) },
          ...names.map(() => denied),
          denied,
        ]);
        await expectStored(prefix, files);
        await expectMultipartLogged(`${prefix}big.bin`, 3);
        if (upstreamKind !== 's3rver') {
          // moto keeps the CRC32 boto3 sent (s3rver ignores checksums): the gateway passed it on
          const head = await upstream.request('HEAD', `/${MINE}/${prefix}small.txt`, { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
          expect(head.headers['x-amz-checksum-crc32']).toBe(crc32Base64(files['small.txt']!));
        }
        await expectDeniedLogged(OTHER, `${prefix}big.bin`, 'CreateMultipartUpload');
        await expectNothingWritten(OTHER, prefix);

        const read = await boto3(readOnly, [
          ['download', MINE, `${prefix}big.bin`, path.join(home, 'big.back')],
          ['list', MINE, prefix],
          ['upload', MINE, `${prefix}ro/small.txt`, path.join(dir, 'small.txt')],
          ['upload', MINE, `${prefix}ro/big.bin`, path.join(dir, 'big.bin')],
        ]);
        expect(read.results).toEqual([{ ok: true }, { ok: true, keys: withPrefix(prefix, names) }, denied, denied]);
        expect(readFileSync(path.join(home, 'big.back')).equals(files['big.bin']!)).toBe(true);
        await expectDeniedLogged(MINE, `${prefix}ro/big.bin`, 'CreateMultipartUpload');
        await expectNothingWritten(MINE, `${prefix}ro/`);
        await expectLogWithinScope();
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });

    // ---------------------------------------------------------------------------------------------
    // Debian-packaged command-line clients

    describeDebian('Debian packages', () => {
      it(
        'rclone copy/sync/lsf through a per-bucket key; other bucket, deletes and read-only writes denied',
        async () => {
          const prefix = 'rclone/';
          const home = tempHome();
          const { dir, files } = makeTree(home);
          // --s3-no-check-bucket: scoped keys may not create buckets. --s3-no-head: rclone 1.60 HEADs
          // new objects with ?versionId=null, which moto rejects (see clients.test.ts).
          const flags = [
            '--s3-upload-cutoff',
            '5M',
            '--s3-chunk-size',
            '5M',
            '--retries',
            '1',
            '--low-level-retries',
            '1',
            '--s3-no-check-bucket',
            '--s3-no-head',
          ];
          const rclone = (credentials: Credentials, ...args: string[]) => run('rclone', [...args, ...flags], rcloneEnv(credentials, home));
          const ok = async (credentials: Credentials, ...args: string[]) => {
            const result = await rclone(credentials, ...args);
            expect(result.code, `rclone ${args.join(' ')}\n${result.stderr}`).toBe(0);
            return result.stdout;
          };
          const lsf = async (credentials: Credentials, remote: string) =>
            (await ok(credentials, 'lsf', '-R', '--files-only', remote)).trim().split('\n').sort();
          try {
            await ok(readWrite, 'copy', dir, `kg:${MINE}/${prefix}copy/`);
            await ok(readWrite, 'sync', dir, `kg:${MINE}/${prefix}sync/`);
            await expectStored(`${prefix}copy/`, files);
            await expectStored(`${prefix}sync/`, files);
            await expectMultipartLogged(`${prefix}copy/big.bin`, 3);
            await expectMultipartLogged(`${prefix}sync/big.bin`, 3);
            for (const credentials of [readWrite, readOnly]) {
              expect(await lsf(credentials, `kg:${MINE}/${prefix}`)).toEqual([
                ...withPrefix('copy/', Object.keys(files)),
                ...withPrefix('sync/', Object.keys(files)),
              ]);
              const back = path.join(home, `back-${credentials === readWrite ? 'rw' : 'ro'}`);
              await ok(credentials, 'copy', `kg:${MINE}/${prefix}sync/`, back);
              expectSameTree(back, files);
            }

            // sync would delete what the source no longer has: per-bucket keys cannot delete
            rmSync(path.join(dir, 'small.txt'));
            expectDenied(await rclone(readWrite, 'sync', dir, `kg:${MINE}/${prefix}sync/`), 'rclone sync deleting small.txt');
            await expectDeniedLogged(MINE, `${prefix}sync/small.txt`, 'DeleteObject');
            expect(await upstreamKeys(MINE, `${prefix}sync/`)).toEqual(withPrefix(`${prefix}sync/`, Object.keys(files)));
            writeFileSync(path.join(dir, 'small.txt'), files['small.txt']!);

            expectDenied(await rclone(readWrite, 'copy', dir, `kg:${OTHER}/${prefix}`), 'rclone copy to the other bucket');
            expectDenied(await rclone(readWrite, 'sync', dir, `kg:${OTHER}/${prefix}`), 'rclone sync to the other bucket');
            expectDenied(await rclone(readWrite, 'lsf', '-R', `kg:${OTHER}/`), 'rclone lsf of the other bucket');
            // copy and sync stop at listing the destination; --no-traverse goes straight to the uploads
            expectDenied(await rclone(readWrite, 'copy', '--no-traverse', dir, `kg:${OTHER}/${prefix}`), 'rclone copy --no-traverse to the other bucket');
            await expectDeniedLogged(OTHER, `${prefix}small.txt`, 'PutObject');
            await expectDeniedLogged(OTHER, `${prefix}big.bin`, 'CreateMultipartUpload');
            await expectNothingWritten(OTHER, prefix);

            expectDenied(await rclone(readOnly, 'copy', dir, `kg:${MINE}/${prefix}ro/`), 'rclone copy with the read-only key');
            expectDenied(await rclone(readOnly, 'sync', dir, `kg:${MINE}/${prefix}ro/`), 'rclone sync with the read-only key');
            await expectDeniedLogged(MINE, `${prefix}ro/big.bin`, 'CreateMultipartUpload');
            await expectNothingWritten(MINE, `${prefix}ro/`);
            await expectLogWithinScope();
          } finally {
            rmSync(home, { recursive: true, force: true });
          }
        },
        CLIENT_TIMEOUT,
      );

      it(
        's3cmd put/get/ls/del through a per-bucket key; other bucket, deletes and read-only writes denied',
        async () => {
          const prefix = 's3cmd/';
          const home = tempHome();
          const { dir, files } = makeTree(home);
          const configs = new Map([readWrite, readOnly].map((credentials, i) => [credentials, s3cmdConfig(credentials, mkdirIn(home, `cfg${i}`))]));
          const s3cmd = (credentials: Credentials, ...args: string[]) => run('s3cmd', ['-c', configs.get(credentials)!, ...args], { HOME: home });
          const ok = async (credentials: Credentials, ...args: string[]) => {
            const result = await s3cmd(credentials, ...args);
            expect(result.code, `s3cmd ${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0);
            return result.stdout;
          };
          const names = ['small.txt', 'big.bin']; // big.bin: multipart, 5 MiB chunks (s3cmdConfig)
          try {
            for (const name of names) await ok(readWrite, 'put', path.join(dir, name), `s3://${MINE}/${prefix}${name}`);
            await expectStored(prefix, { 'small.txt': files['small.txt']!, 'big.bin': files['big.bin']! });
            await expectMultipartLogged(`${prefix}big.bin`, 3);
            for (const credentials of [readWrite, readOnly]) {
              const listing = await ok(credentials, 'ls', '--recursive', `s3://${MINE}/${prefix}`);
              for (const name of names) expect(listing).toContain(`s3://${MINE}/${prefix}${name}`);
              for (const name of names) {
                const back = path.join(home, `back-${name}`);
                await ok(credentials, 'get', '--force', `s3://${MINE}/${prefix}${name}`, back);
                expect(readFileSync(back).equals(files[name]!), name).toBe(true);
              }
            }

            for (const credentials of [readWrite, readOnly]) {
              expectDenied(await s3cmd(credentials, 'del', `s3://${MINE}/${prefix}small.txt`), 's3cmd del in its own bucket');
            }
            await expectDeniedLogged(MINE, `${prefix}small.txt`, 'DeleteObject');
            expect(await upstreamKeys(MINE, prefix)).toEqual(withPrefix(prefix, names));

            for (const name of names) {
              expectDenied(await s3cmd(readWrite, 'put', path.join(dir, name), `s3://${OTHER}/${prefix}${name}`), `s3cmd put ${name} to the other bucket`);
            }
            // s3cmd get starts with a HEAD, whose 403 has no body to name the code
            const stolen = path.join(home, 'stolen');
            expectDenied(
              await s3cmd(readWrite, 'get', '--force', `s3://${OTHER}/${SEED}`, stolen),
              's3cmd get from the other bucket',
              /S3 error: 403 \(Forbidden\)/,
            );
            expect(existsSync(stolen)).toBe(false);
            expectDenied(await s3cmd(readWrite, 'ls', `s3://${OTHER}/`), 's3cmd ls of the other bucket');
            expectDenied(await s3cmd(readWrite, 'del', `s3://${OTHER}/${SEED}`), 's3cmd del in the other bucket');
            await expectDeniedLogged(OTHER, `${prefix}small.txt`, 'PutObject');
            await expectDeniedLogged(OTHER, `${prefix}big.bin`, 'CreateMultipartUpload');
            await expectNothingWritten(OTHER, prefix);

            for (const name of names) {
              expectDenied(await s3cmd(readOnly, 'put', path.join(dir, name), `s3://${MINE}/${prefix}ro/${name}`), `s3cmd put ${name} with the read-only key`);
            }
            await expectDeniedLogged(MINE, `${prefix}ro/big.bin`, 'CreateMultipartUpload');
            await expectNothingWritten(MINE, `${prefix}ro/`);
            await expectLogWithinScope();
          } finally {
            rmSync(home, { recursive: true, force: true });
          }
        },
        CLIENT_TIMEOUT,
      );

      it(
        'aws-cli v2 s3 sync through a per-bucket key; other bucket and read-only writes denied',
        async () => {
          const prefix = 'awscli/';
          const home = tempHome();
          const { dir, files } = makeTree(home);
          const aws = (credentials: Credentials, ...args: string[]) =>
            run(DEBIAN_AWS, [...args, '--endpoint-url', credentials.endpoint], awsEnv(credentials, mkdirIn(home, credentials === readWrite ? 'rw' : 'ro')));
          const ok = async (credentials: Credentials, ...args: string[]) => {
            const result = await aws(credentials, ...args);
            expect(result.code, `aws ${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0);
            return result.stdout;
          };
          try {
            await ok(readWrite, 's3', 'sync', dir, `s3://${MINE}/${prefix}`);
            await expectStored(prefix, files);
            await expectMultipartLogged(`${prefix}big.bin`, 2); // aws-cli's defaults: 8 MiB threshold and parts
            for (const credentials of [readWrite, readOnly]) {
              const listing = await ok(credentials, 's3', 'ls', '--recursive', `s3://${MINE}/${prefix}`);
              for (const name of Object.keys(files)) expect(listing).toContain(`${prefix}${name}`);
              const back = path.join(home, `back-${credentials === readWrite ? 'rw' : 'ro'}`);
              await ok(credentials, 's3', 'sync', `s3://${MINE}/${prefix}`, back);
              expectSameTree(back, files);
            }

            expectDenied(await aws(readWrite, 's3', 'sync', dir, `s3://${OTHER}/${prefix}`), 'aws s3 sync to the other bucket');
            expectDenied(await aws(readWrite, 's3', 'sync', `s3://${OTHER}/`, path.join(home, 'stolen')), 'aws s3 sync from the other bucket');
            // sync stops at listing the destination; cp goes straight to the uploads
            expectDenied(await aws(readWrite, 's3', 'cp', '--recursive', dir, `s3://${OTHER}/${prefix}`), 'aws s3 cp --recursive to the other bucket');
            await expectDeniedLogged(OTHER, `${prefix}small.txt`, 'PutObject');
            await expectDeniedLogged(OTHER, `${prefix}big.bin`, 'CreateMultipartUpload');
            await expectNothingWritten(OTHER, prefix);

            expectDenied(await aws(readOnly, 's3', 'sync', dir, `s3://${MINE}/${prefix}ro/`), 'aws s3 sync with the read-only key');
            await expectDeniedLogged(MINE, `${prefix}ro/big.bin`, 'CreateMultipartUpload');
            await expectNothingWritten(MINE, `${prefix}ro/`);
            await expectLogWithinScope();
          } finally {
            rmSync(home, { recursive: true, force: true });
          }
        },
        CLIENT_TIMEOUT,
      );
    });
  });
}

function mkdirIn(parent: string, name: string): string {
  const dir = path.join(parent, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
