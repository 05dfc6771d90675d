/**
 * `npm run demo`: a self-contained keygate with an embedded local S3 upstream (s3rver), for trying
 * keygate where no RunPod credentials exist. It starts both, issues two scoped keys, proves they
 * work (and that scope is enforced) with the AWS SDK, and prints aws-cli commands to try by hand.
 * Development-only: s3rver and the AWS SDK are devDependencies.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from './config.js';
import { boto3Snippet, environmentBlock } from './keys/snippets.js';
import { ListenError, startServer } from './server.js';
import { openStore } from './store/open.js';

const BUCKETS = ['demo-bucket', 'private-bucket'];
/** Around the boto3 snippet, so a reader (or a test) finds where it begins and ends. */
const BOTO3_BEGIN = '# ---- boto3 ----';
const BOTO3_END = '# ---- end ----';

interface S3rver {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'keygate-demo-'));
  try {
    await runDemo(workDir);
  } catch (error) {
    // Nothing of a demo that did not start stays behind (its data dir holds a master key).
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
}

async function runDemo(workDir: string): Promise<void> {
  const S3rverClass = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rver;
  const upstreamServer = new S3rverClass({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: path.join(workDir, 'upstream'),
    configureBuckets: BUCKETS.map((name) => ({ name })),
  });
  const { port: upstreamPort } = await upstreamServer.run();

  const port = process.env.KEYGATE_PORT ?? '9000';
  const config = loadConfig({
    KEYGATE_DATA_DIR: path.join(workDir, 'data'),
    KEYGATE_HOST: '127.0.0.1',
    KEYGATE_PORT: port,
    KEYGATE_ADMIN_PORT: process.env.KEYGATE_ADMIN_PORT ?? '9001',
    KEYGATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    KEYGATE_REGION: 'us-east-1',
    KEYGATE_ADMIN_TOKEN: 'demo-admin-token-not-for-production',
    KEYGATE_UPSTREAM_ENDPOINT: `http://127.0.0.1:${upstreamPort}`,
    KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'S3RVER',
    KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'S3RVER',
    // s3rver stores aws-chunked bodies raw, so the gateway must not forward trailing checksums to it.
    KEYGATE_UPSTREAM_TRAILING_CHECKSUMS: '0',
    // The access log goes to a file, not between the lines printed below.
    KEYGATE_ACCESS_LOG: path.join(workDir, 'access.log'),
  });
  const store = await openStore(config);
  let server;
  try {
    server = await startServer(config, { store, announce: () => undefined });
  } catch (error) {
    await store.close();
    const closed = upstreamServer.close();
    upstreamServer.httpServer?.closeAllConnections();
    await closed;
    if (error instanceof ListenError) {
      throw new Error(
        `port ${config.port} (S3) or ${config.adminPort} (admin) is taken; run with other ports, e.g. KEYGATE_PORT=19000 KEYGATE_ADMIN_PORT=19001 npm run demo`,
      );
    }
    throw error;
  }

  const writer = await store.keys.create({ name: 'demo-writer', bucket: 'demo-bucket', preset: 'read-write' });
  const admin = await store.keys.create({ name: 'demo-workspace', permissions: ['read', 'write', 'delete'] });

  const client = (key: { accessKeyId: string; secretAccessKey: string }) =>
    new S3Client({
      endpoint: config.publicUrl,
      region: config.region,
      forcePathStyle: true,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
  const s3 = client(writer);
  await s3.send(new PutObjectCommand({ Bucket: 'demo-bucket', Key: 'hello ✓.txt', Body: 'Hello through keygate!\n' }));
  const got = await s3.send(new GetObjectCommand({ Bucket: 'demo-bucket', Key: 'hello ✓.txt' }));
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'demo-bucket' }));
  const denied = await s3.send(new ListObjectsV2Command({ Bucket: 'private-bucket' })).then(
    () => 'allowed (unexpected!)',
    (error: Error) => `${error.name} (the key is scoped to demo-bucket)`,
  );
  s3.destroy();
  client(admin).destroy();

  const line = '-'.repeat(78);
  process.stdout.write(
    [
      '',
      line,
      'keygate demo is running (embedded s3rver upstream; nothing leaves this machine)',
      line,
      `S3 endpoint   ${config.publicUrl}   region ${config.region}`,
      `admin API     ${server.adminUrl}   (Bearer demo-admin-token-not-for-production)`,
      `dashboard     ${server.adminUrl}/   (sign in with demo-admin-token-not-for-production)`,
      '',
      `Checked just now with the AWS SDK, key "${writer.name}" (bucket demo-bucket, read-write):`,
      `  PUT + GET hello ✓.txt  -> ${JSON.stringify(await got.Body!.transformToString())}`,
      `  LIST demo-bucket       -> ${(listed.Contents ?? []).map((o) => o.Key).join(', ')}`,
      `  LIST private-bucket    -> ${denied}`,
      '',
      'Try it with aws-cli (per-bucket read-write key):',
      ...environmentBlock(writer, config).map((text) => `  ${text}`),
      `  aws s3 ls s3://demo-bucket/`,
      `  echo hi | aws s3 cp - s3://demo-bucket/from-cli.txt`,
      `  aws s3 cp s3://demo-bucket/from-cli.txt -`,
      `  aws s3 rm s3://demo-bucket/from-cli.txt     # AccessDenied: read-write cannot delete`,
      `  aws s3 ls s3://private-bucket/              # AccessDenied: other bucket`,
      `  (aws-cli before 2.13 ignores AWS_ENDPOINT_URL: add --endpoint-url ${config.publicUrl})`,
      '',
      'Or with boto3 (paste into a file and run it with python3):',
      BOTO3_BEGIN,
      ...boto3Snippet(writer, config),
      BOTO3_END,
      '',
      'Workspace-wide key (read, write, delete on every bucket):',
      `  AWS_ACCESS_KEY_ID=${admin.accessKeyId} AWS_SECRET_ACCESS_KEY=${admin.secretAccessKey} aws --endpoint-url ${config.publicUrl} s3 ls`,
      '',
      'Manage keys while it runs (same data dir):',
      `  KEYGATE_DATA_DIR=${config.dataDir} npm run keygate -- keys list`,
      `  KEYGATE_DATA_DIR=${config.dataDir} npm run keygate -- keys delete ${writer.accessKeyId}   # revoked on the next request`,
      '',
      `Access log: ${path.join(workDir, 'access.log')}`,
      'Press Ctrl-C to stop (the demo data is deleted).',
      line,
      '',
    ].join('\n'),
  );

  const shutdown = async () => {
    await server.close();
    await store.close();
    const closed = upstreamServer.close();
    upstreamServer.httpServer?.closeAllConnections();
    await closed;
    rmSync(workDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
  if (process.env.KEYGATE_DEMO_EXIT === '1') await shutdown();
}

main().catch((error: unknown) => {
  console.error(`keygate demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
