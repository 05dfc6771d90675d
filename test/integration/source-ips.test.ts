/**
 * Keys limited to networks (`--allow-ip`), through real gateway processes and real clients: the
 * client is the connection's peer unless KEYGATE_TRUSTED_PROXIES names it, and then the rightmost
 * untrusted X-Forwarded-For hop. A spoofed X-Forwarded-For from an untrusted peer never helps.
 * Presigned URLs made with the key obey the same list.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYENV_AWS, awsEnv, run, tempHome } from '../helpers/clients.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { runCliProcess } from '../helpers/keygate-cli.js';
import { gatewayS3Client } from '../helpers/sdk.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'office-data';

let upstream: TestUpstream;
/** Trusts no proxy. */
let direct: Gateway;
/** Trusts 127.0.0.1 as a proxy (as if a load balancer on this host sat in front). */
let proxied: Gateway;

beforeAll(async () => {
  upstream = await startS3rver();
  await upstream.createBucket(BUCKET);
  [direct, proxied] = await Promise.all([
    startGateway(upstreamEnv(upstream)),
    startGateway({ ...upstreamEnv(upstream), KEYGATE_TRUSTED_PROXIES: '127.0.0.1/32,::1' }),
  ]);
  for (const gateway of [direct, proxied]) await gateway.addBucket({ name: BUCKET });
});

afterAll(async () => {
  await direct?.stop();
  await proxied?.stop();
  await upstream?.stop();
});

async function sdkOutcome(gateway: Gateway, key: CreatedKey): Promise<string> {
  const s3 = gatewayS3Client(gateway.url, key);
  try {
    await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    return 'allowed';
  } catch (error) {
    return (error as { name?: string }).name ?? 'error';
  } finally {
    s3.destroy();
  }
}

async function presignedStatus(gateway: Gateway, key: CreatedKey, forwardedFor?: string): Promise<{ status: number; text: string }> {
  const { json } = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${BUCKET}/missing.txt`, method: 'HEAD' });
  const response = await fetch(json.url as string, { method: 'HEAD', headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } });
  return { status: response.status, text: await response.text() };
}

describe('keys limited to networks', () => {
  it('a key allowed only elsewhere is refused from here, with the SDK, aws-cli and its presigned URLs, and a spoofed X-Forwarded-For does not help', async () => {
    const elsewhere = await direct.createKey({ name: 'office-only', permissions: ['read'], allowedIps: '10.0.0.0/8,2001:db8::/32' });
    expect(elsewhere.allowedIps).toEqual(['10.0.0.0/8', '2001:db8::/32']);
    expect(await sdkOutcome(direct, elsewhere)).toBe('AccessDenied');
    const cli = await run(
      PYENV_AWS,
      ['--endpoint-url', direct.url, 's3api', 'list-objects-v2', '--bucket', BUCKET],
      awsEnv({ ...elsewhere, endpoint: direct.url }, tempHome()),
    );
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/AccessDenied.*may not be used from 127\.0\.0\.1/s);
    expect((await presignedStatus(direct, elsewhere)).status).toBe(403);
    expect((await presignedStatus(direct, elsewhere, '10.1.2.3')).status).toBe(403);
  });

  it('a key allowed from here works; created by the CLI, shown by keys show', async () => {
    const created = await runCliProcess(
      ['keys', 'create', '--name', 'local', '--perm', 'read', '--allow-ip', '127.0.0.0/8', '--allow-ip', '::1', '--json'],
      direct.env,
    );
    expect(created.code, created.stderr).toBe(0);
    const local = JSON.parse(created.stdout) as CreatedKey;
    expect(local.allowedIps).toEqual(['127.0.0.0/8', '::1/128']);
    expect(await sdkOutcome(direct, local)).toBe('allowed');
    expect((await presignedStatus(direct, local)).status).toBe(404);
    const shown = await runCliProcess(['keys', 'show', local.accessKeyId], direct.env);
    expect(shown.stdout).toMatch(/Allowed from\s+127\.0\.0\.0\/8, ::1\/128/);
  });

  it('behind a trusted proxy, the rightmost untrusted X-Forwarded-For hop is the client', async () => {
    const office = await proxied.createKey({ name: 'office', permissions: ['read'], allowedIps: '10.0.0.0/8' });
    // The peer (127.0.0.1) is trusted, so the hop it reports is the client.
    expect((await presignedStatus(proxied, office, '10.1.2.3')).status).toBe(404);
    // A client that writes an office address itself is further left: the proxy appends the real one.
    const spoofed = await presignedStatus(proxied, office, '10.1.2.3, 203.0.113.9');
    expect(spoofed.status).toBe(403);
    // Trusted hops are skipped; a hop that is not an address fails closed.
    expect((await presignedStatus(proxied, office, '10.1.2.3, 127.0.0.1')).status).toBe(404);
    expect((await presignedStatus(proxied, office, 'unknown')).status).toBe(403);
    // No header: the peer itself, which is not in the office network.
    expect((await presignedStatus(proxied, office)).status).toBe(403);
    expect(await sdkOutcome(proxied, office)).toBe('AccessDenied');
  });
});
