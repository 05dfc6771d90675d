/**
 * Scale-out: three gateway processes on one PostgreSQL key store (a real server, see
 * helpers/postgres.ts), in front of one upstream. A key made on any instance works on all of them,
 * and a revocation made anywhere (another instance's admin API, the CLI) holds on every instance
 * from the very next request, also across a restart of the PostgreSQL server: while it is down the
 * instances refuse requests (503 ServiceUnavailable) instead of judging them by what they last saw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { REPO_ROOT, startGateway, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { runCliProcess } from '../helpers/keygate-cli.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { gatewayS3Client } from '../helpers/sdk.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'shared-bucket';
const MASTER_KEY = '11'.repeat(32);

describe('three instances on one PostgreSQL store', () => {
  let postgres: PostgresServer;
  let upstream: TestUpstream;
  let instances: Gateway[] = [];
  let cliDataDir: string;

  beforeAll(async () => {
    [postgres, upstream] = await Promise.all([startPostgres(), startS3rver()]);
    await upstream.createBucket(BUCKET);
    cliDataDir = mkdtempSync(path.join(tmpdir(), 'keygate-cli-'));
    const env = {
      KEYGATE_DATABASE_URL: postgres.url,
      KEYGATE_MASTER_KEY: MASTER_KEY,
      KEYGATE_UPSTREAM_ENDPOINT: upstream.endpoint,
      KEYGATE_UPSTREAM_REGION: upstream.region,
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: upstream.accessKeyId,
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: upstream.secretAccessKey,
      KEYGATE_UPSTREAM_TRAILING_CHECKSUMS: '0',
      KEYGATE_ACCESS_LOG: 'off',
    };
    // One after the other first would hide a migration race: all three open the fresh store at once.
    instances = await Promise.all([startGateway(env), startGateway(env), startGateway(env)]);
  });

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await upstream?.stop();
    await postgres?.remove();
    if (cliDataDir) rmSync(cliDataDir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCliProcess(args, { KEYGATE_DATA_DIR: cliDataDir, KEYGATE_DATABASE_URL: postgres.url, KEYGATE_MASTER_KEY: MASTER_KEY });

  /** The status of a GET with the key on one instance (200, or the error's status and code). */
  async function get(instance: Gateway, key: CreatedKey, objectKey = 'hello.txt'): Promise<string> {
    const client = gatewayS3Client(instance.url, key);
    try {
      const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey }));
      await response.Body?.transformToString();
      return '200';
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      return `${e.$metadata?.httpStatusCode} ${e.name}`;
    } finally {
      client.destroy();
    }
  }

  const onEvery = (key: CreatedKey, objectKey?: string) => Promise.all(instances.map((instance) => get(instance, key, objectKey)));

  async function metric(instance: Gateway, name: string): Promise<number | null> {
    const response = await fetch(`${instance.adminUrl}/metrics`, { headers: { authorization: `Bearer ${instance.adminToken}` } });
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(await response.text());
    return match ? Number(match[1]) : null;
  }

  async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('a key made on instance 1 works on 2 and 3; deleted through the CLI, the next request on every instance is 403', async () => {
    const key = await instances[0]!.createKey({ name: 'shared', permissions: ['read', 'write'] });
    const writer = gatewayS3Client(instances[1]!.url, key);
    await writer.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'hello.txt', Body: 'from instance 2' }));
    writer.destroy();
    expect(await onEvery(key)).toEqual(['200', '200', '200']);

    const deleted = await cli('keys', 'delete', key.accessKeyId);
    expect(deleted.code, deleted.stderr).toBe(0);
    // No wait: the very next request on each instance.
    expect(await onEvery(key)).toEqual(['403 InvalidAccessKeyId', '403 InvalidAccessKeyId', '403 InvalidAccessKeyId']);
  });

  it('a key disabled through one instance is refused by all; a bucket change made on one routes on all', async () => {
    const key = await instances[1]!.createKey({ name: 'to-disable', permissions: ['read'] });
    expect(await onEvery(key)).toEqual(['200', '200', '200']);
    expect((await instances[2]!.admin('PATCH', `/v1/keys/${key.accessKeyId}`, { disabled: true })).status).toBe(200);
    expect(await onEvery(key)).toEqual(['403 AccessDenied', '403 AccessDenied', '403 AccessDenied']);
    expect((await instances[0]!.admin('PATCH', `/v1/keys/${key.accessKeyId}`, { disabled: false })).status).toBe(200);
    expect(await onEvery(key)).toEqual(['200', '200', '200']);

    // A registry entry made through instance 3 routes an alias on every instance; removed, it is gone everywhere.
    await instances[2]!.addBucket({ name: 'alias-bucket', endpoint: upstream.endpoint, region: upstream.region, upstreamBucket: BUCKET });
    const aliasGet = (instance: Gateway) => {
      const client = gatewayS3Client(instance.url, key);
      return client
        .send(new GetObjectCommand({ Bucket: 'alias-bucket', Key: 'hello.txt' }))
        .then(async (response) => (await response.Body?.transformToString()) ?? '')
        .catch((error: { name?: string }) => `error ${error.name}`)
        .finally(() => client.destroy());
    };
    expect(await Promise.all(instances.map(aliasGet))).toEqual(['from instance 2', 'from instance 2', 'from instance 2']);
    expect((await instances[0]!.admin('DELETE', '/v1/buckets/alias-bucket')).status).toBe(204);
    // The default upstream has no bucket by that name: unregistered, the alias no longer reaches BUCKET.
    expect(await Promise.all(instances.map(aliasGet))).toEqual(['error NoSuchBucket', 'error NoSuchBucket', 'error NoSuchBucket']);
  });

  it('across a PostgreSQL restart: refused while it is down, listeners reconnect, and a deletion right after holds everywhere', async () => {
    const key = await instances[2]!.createKey({ name: 'restart', permissions: ['read'] });
    expect(await onEvery(key)).toEqual(['200', '200', '200']);
    for (const instance of instances) expect(await metric(instance, 'keygate_store_change_listener_up')).toBe(1);

    await postgres.stop();
    // Nothing stale is accepted: without a read of the store's change counter, nobody is let in.
    expect(await onEvery(key)).toEqual(['503 ServiceUnavailable', '503 ServiceUnavailable', '503 ServiceUnavailable']);
    // The admin API says what is wrong instead of failing as an internal error.
    const listed = await instances[0]!.admin('GET', '/v1/keys');
    expect(listed.status).toBe(503);
    expect(listed.json.error).toBe('store_unavailable');
    await postgres.start();

    // The pools reconnect on the next request; the listeners on their own, with backoff.
    await until(async () => (await onEvery(key)).every((status) => status === '200'), 'requests to pass again');
    for (const instance of instances) await until(async () => (await metric(instance, 'keygate_store_change_listener_up')) === 1, 'the listener');

    const deleted = await cli('keys', 'delete', key.accessKeyId);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await onEvery(key)).toEqual(['403 InvalidAccessKeyId', '403 InvalidAccessKeyId', '403 InvalidAccessKeyId']);
  });

  it('through the shipped load balancer config (deploy/nginx.conf): signatures hold, uploads stream, and a multipart upload spans instances', async () => {
    const balancer = await startBalancer(instances);
    try {
      const key = await instances[0]!.createKey({ name: 'behind-lb', permissions: ['read', 'write'] });
      const viaBalancer = gatewayS3Client(balancer.url, key);
      const big = Buffer.alloc(8 * 1024 * 1024, 7);
      await viaBalancer.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'via-lb.bin', Body: big }));
      // Round-robin: these land on different instances.
      for (let i = 0; i < 3; i++) {
        const got = await viaBalancer.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'via-lb.bin' }));
        expect(Buffer.from(await got.Body!.transformToByteArray()).equals(big)).toBe(true);
      }
      viaBalancer.destroy();

      // Upload ids are sealed with a key derived from the shared master key: any instance continues any upload.
      const on = (i: number) => gatewayS3Client(instances[i]!.url, key);
      const { UploadId } = await on(0).send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'spanning.bin' }));
      const part = Buffer.alloc(5 * 1024 * 1024, 1);
      const p1 = await on(1).send(new UploadPartCommand({ Bucket: BUCKET, Key: 'spanning.bin', UploadId, PartNumber: 1, Body: part }));
      const p2 = await on(2).send(new UploadPartCommand({ Bucket: BUCKET, Key: 'spanning.bin', UploadId, PartNumber: 2, Body: 'tail' }));
      await on(0).send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'spanning.bin',
          UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: p1.ETag },
              { PartNumber: 2, ETag: p2.ETag },
            ],
          },
        }),
      );
      expect(await get(instances[2]!, key, 'spanning.bin')).toBe('200');
    } finally {
      await balancer.stop();
    }
  });

  it('a deletion made while an instance has not yet reconnected its listener still holds on that instance', async () => {
    const key = await instances[0]!.createKey({ name: 'no-listener', permissions: ['read'] });
    expect(await onEvery(key)).toEqual(['200', '200', '200']);
    // Cut every listener connection (as a network blip or a failover would) and delete at once, as psql would.
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()");
      await admin.query('DELETE FROM access_keys WHERE access_key_id = $1', [key.accessKeyId]);
    } finally {
      await admin.end();
    }
    expect(await onEvery(key)).toEqual(['403 InvalidAccessKeyId', '403 InvalidAccessKeyId', '403 InvalidAccessKeyId']);
  });
});

/** deploy/nginx.conf as shipped, with the instances' loopback addresses instead of the compose service names. */
async function startBalancer(instances: Gateway[]): Promise<{ url: string; stop(): Promise<void> }> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'keygate-lb-'));
  mkdirSync(path.join(prefix, 'logs'));
  const port = await freePort();
  let conf = readFileSync(path.join(REPO_ROOT, 'deploy/nginx.conf'), 'utf8');
  const servers = [...conf.matchAll(/server keygate-\d:9000/g)];
  expect(servers).toHaveLength(instances.length);
  instances.forEach((instance, i) => (conf = conf.replace(`server keygate-${i + 1}:9000`, `server ${new URL(instance.url).host}`)));
  conf = conf
    .replace('listen 80;', `listen 127.0.0.1:${port};`)
    .replace('worker_processes auto;', `worker_processes 1;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log warn;`)
    .replace(
      'http {',
      `http {\n  client_body_temp_path ${prefix}/body;\n  proxy_temp_path ${prefix}/proxy;\n  fastcgi_temp_path ${prefix}/fastcgi;\n  uwsgi_temp_path ${prefix}/uwsgi;\n  scgi_temp_path ${prefix}/scgi;`,
    );
  writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const child: ChildProcess = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (
      await fetch(`${url}/_health`).then(
        (response) => response.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${readFileSync(path.join(prefix, 'logs/error.log'), 'utf8')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGQUIT');
      await exited;
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
