/**
 * Every command answers --help (wherever it stands on the line) with its usage, exit 0, and does
 * nothing else: no store change, no network call, no listener. Sentinels: a RunPod REST server that
 * counts requests (buckets sync would call it), the store's keys and buckets and its file, and the
 * ports serve would bind.
 */
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_MASTER_KEY_HEX, freePort, makeTempDirs, runCliProcess } from '../helpers/keygate-cli.js';

const dirs = makeTempDirs();

describe('--help on every command', () => {
  let rest: http.Server;
  let restCalls = 0;
  let env: Record<string, string>;
  let keyId: string;
  let ports: number[];

  beforeAll(async () => {
    rest = http.createServer((_req, res) => {
      restCalls++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"networkVolumes":[{"id":"vol-new","name":"n","size":10,"dataCenter":"EU-RO-1"}]}');
    });
    await new Promise<void>((resolve) => rest.listen(0, '127.0.0.1', resolve));
    ports = [await freePort(), await freePort()];
    env = {
      KEYGATE_DATA_DIR: dirs.make(),
      KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
      KEYGATE_PORT: String(ports[0]),
      KEYGATE_ADMIN_PORT: String(ports[1]),
      RUNPOD_API_KEY: 'rp-key',
      RUNPOD_S3_ACCESS_KEY: 'user_x',
      RUNPOD_S3_SECRET_KEY: 'rps_x',
      KEYGATE_RUNPOD_REST_URL: `http://127.0.0.1:${(rest.address() as { port: number }).port}/v2`,
    };
    expect((await runCliProcess(['buckets', 'add', 'kept-bucket', '--endpoint', 'http://127.0.0.1:1', '--region', 'us-east-1'], env)).code).toBe(0);
    const created = await runCliProcess(['keys', 'create', '--name', 'kept', '--perm', 'read', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    keyId = JSON.parse(created.stdout).accessKeyId as string;
  });

  afterAll(() => {
    rest.close();
    dirs.cleanup();
  });

  const state = async () => ({
    keys: (await runCliProcess(['keys', 'list', '--json'], env)).stdout,
    buckets: (await runCliProcess(['buckets', 'list', '--json'], env)).stdout,
    db: readFileSync(path.join(env.KEYGATE_DATA_DIR!, 'keygate.db')).length,
  });

  const lines = () => [
    ['serve', '--help'],
    ['keys', '--help'],
    ['keys', 'create', '--help'],
    ['keys', 'create', '--name', 'would-be-created', '--perm', 'read', '--help'],
    ['keys', 'list', '--help'],
    ['keys', 'show', keyId, '--help'],
    ['keys', 'delete', keyId, '--help'],
    ['keys', 'delete', '-h', keyId],
    ['keys', 'disable', keyId, '--help'],
    ['keys', 'enable', '-h', keyId],
    ['buckets', '--help'],
    ['buckets', 'add', 'would-be-added', '--datacenter', 'EU-RO-1', '--help'],
    ['buckets', 'list', '--help'],
    ['buckets', 'remove', 'kept-bucket', '--help'],
    ['buckets', 'sync', '--help'],
    ['buckets', 'cors', 'kept-bucket', '--clear', '--help'],
    ['presign', keyId, 's3://kept-bucket/k', '--help'],
    ['store', '--help'],
    // A server that would refuse the connection: --help must not even try it.
    ['store', 'migrate', '--to', 'postgres://keygate@127.0.0.1:1/keygate', '--help'],
    ['store', 'migrate', '--dry-run', '-h'],
    ['--help'],
  ];

  it('prints usage, exits 0, and changes nothing', async () => {
    const before = await state();
    // Four at a time: nothing they do may change anything, so their order does not matter.
    const queue = lines();
    const results: Array<[string[], Awaited<ReturnType<typeof runCliProcess>>]> = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let line = queue.shift(); line !== undefined; line = queue.shift()) results.push([line, await runCliProcess(line, env)]);
      }),
    );
    expect(results).toHaveLength(lines().length);
    for (const [line, result] of results) {
      expect(result.code, `keygate ${line.join(' ')}: ${result.stderr}`).toBe(0);
      expect(result.stdout, line.join(' ')).toMatch(/Usage/);
      expect(result.stderr, line.join(' ')).toBe('');
    }
    expect(restCalls, 'buckets sync --help called the RunPod API').toBe(0);
    expect(await state()).toEqual(before);
    for (const port of ports) {
      // Nothing listens where serve would have.
      await expect(new Promise((resolve, reject) => net.connect(port, '127.0.0.1').once('connect', resolve).once('error', reject))).rejects.toThrow();
    }
    // Each line is a process that transpiles the CLI first (tsx): slow on two shared cores.
  }, 180_000);
});
