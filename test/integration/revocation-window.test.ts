/**
 * Revocation by another process while the sender drags its request out. The request path reads
 * SQLite's data_version once per request start (src/store/change-detector.ts); a lookup made after
 * waiting on the client must not reuse that read. Here: a POST form whose fields arrive after the
 * CLI deleted its key (with an Origin header, which makes the gateway look the bucket up, and so
 * read data_version, as the request starts), and a form whose bucket the CLI unregistered meanwhile.
 * Neither may reach the upstream. The same for XML bodies acted on once read (DeleteObjects): a key
 * disabled or deleted while the body arrives does nothing, and bodies that trickle in do not hold
 * up other clients' XML requests.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { runCliProcess } from '../helpers/keygate-cli.js';
import { multipartForm, signPolicy } from '../helpers/post-forms.js';
import { signedHeaders } from '../helpers/sign.js';

const BUCKET = 'window-bucket';

const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');

describe('a change made by the CLI while a POST form is still arriving', () => {
  let gateway: Gateway;
  let upstream: http.Server;
  let upstreamWrites = 0;
  let upstreamDeletes = 0;

  beforeAll(async () => {
    // An upstream that stores nothing and counts what would have been stored.
    upstream = http.createServer((req, res) => {
      if (req.method === 'PUT' || req.method === 'POST') upstreamWrites++;
      if (req.method === 'DELETE') upstreamDeletes++;
      req.resume();
      req.on('end', () => res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"', 'content-length': 0 }).end());
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    // The default upstream goes nowhere: only the registry entry routes BUCKET to the counting upstream.
    gateway = await startGateway({
      KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:1',
      KEYGATE_UPSTREAM_REGION: 'us-east-1',
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'UPSTREAMKEY',
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'upstream-secret',
      KEYGATE_ACCESS_LOG: 'off',
    });
    await gateway.addBucket({ name: BUCKET, endpoint: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`, region: 'us-east-1' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  /** Uses the key once (so it is cached), starts a form, runs `cliArgs` meanwhile, finishes the form; returns the status line and error code. */
  async function formAcrossChange(key: CreatedKey, cliArgs: string[]): Promise<{ status: string; code: string | null }> {
    const url = new URL(gateway.url);
    await new Promise<void>((resolve, reject) => {
      const headers = signedHeaders(key, url.host, 'HEAD', `/${BUCKET}/warm`);
      http
        .request({ host: url.hostname, port: url.port, method: 'HEAD', path: `/${BUCKET}/warm`, headers }, (response) => {
          expect(response.statusCode).toBe(200);
          response.resume().on('end', resolve);
        })
        .on('error', reject)
        .end();
    });
    const fields = signPolicy({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: 'us-east-1' }, [
      { bucket: BUCKET },
      ['starts-with', '$key', ''],
    ]);
    const { body, contentType } = multipartForm([
      { name: 'x-ignore-first', value: 'a' },
      { name: 'key', value: 'after-the-change.txt' },
      ...Object.entries(fields).map(([name, value]) => ({ name, value })),
      { name: 'file', value: 'payload', filename: 'f.txt' },
    ]);
    const firstBytes = body.indexOf('\r\n', 60) + 2;
    const socket = net.connect(Number(url.port), url.hostname);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /${BUCKET} HTTP/1.1\r\nHost: ${url.host}\r\nOrigin: https://app.example\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    socket.write(body.subarray(0, firstBytes));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const changed = await runCliProcess(cliArgs, gateway.env);
    expect(changed.code, changed.stderr).toBe(0);
    socket.write(body.subarray(firstBytes));
    // Until the answer's head is in (an error answer's body follows it at once), or 10 s.
    for (let waited = 0; !answer.includes('\r\n\r\n') && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
    return { status: answer.split('\r\n', 1)[0]!, code: /<Code>(\w+)<\/Code>/.exec(answer)?.[1] ?? null };
  }

  it('refuses a form whose key was deleted while its fields arrived, and stores nothing', async () => {
    const key = await gateway.createKey({ name: 'revoked-mid-form', bucket: BUCKET, preset: 'read-write' });
    const writesBefore = upstreamWrites;
    const outcome = await formAcrossChange(key, ['keys', 'delete', key.accessKeyId]);
    expect(outcome.status).toMatch(/^HTTP\/1\.1 403 /);
    expect(outcome.code).toBe('InvalidAccessKeyId');
    expect(upstreamWrites).toBe(writesBefore);
  });

  it('refuses a form whose bucket was unregistered while its fields arrived, and stores nothing', async () => {
    const key = await gateway.createKey({ name: 'bucket-gone-mid-form', bucket: BUCKET, preset: 'read-write' });
    const writesBefore = upstreamWrites;
    // Unregistered, the name falls to the default upstream (unreachable here): the form must not
    // be stored through the route it had when it started.
    const outcome = await formAcrossChange(key, ['buckets', 'remove', BUCKET]);
    expect(outcome.status).toMatch(/^HTTP\/1\.1 5\d\d /); // the default upstream's route, which goes nowhere
    expect(upstreamWrites).toBe(writesBefore);
  });
  /** Starts a signed DeleteObjects whose body stops after `sent` bytes; returns the socket and a way to finish it and read the answer. */
  async function slowDeleteObjects(
    key: CreatedKey,
    sent: number,
    xml = Buffer.from('<Delete><Object><Key>victim.txt</Key></Object><Object><Key>other.txt</Key></Object></Delete>'),
  ) {
    const url = new URL(gateway.url);
    const headers = signedHeaders(key, url.host, 'POST', `/${BUCKET}?delete=`, { headers: { 'content-length': String(xml.length), 'content-md5': md5(xml) } });
    const socket = net.connect(Number(url.port), url.hostname);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    const head = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`POST /${BUCKET}?delete= HTTP/1.1\r\n${head}\r\n`);
    socket.write(xml.subarray(0, sent));
    return {
      socket,
      answered: () => answer.includes('\r\n\r\n'),
      async finish(): Promise<{ status: string; body: string }> {
        socket.write(xml.subarray(sent));
        // Whole: a DeleteResult to its end (its entries may be <Error>s too), or an error document.
        const whole = () => answer.includes('</DeleteResult>') || /\r\n\r\n(<\?xml[^>]*\?>\s*)?<Error>[\s\S]*<\/Error>/.test(answer);
        for (let waited = 0; !whole() && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
        socket.destroy();
        return { status: answer.split('\r\n', 1)[0]!, body: answer };
      },
    };
  }

  for (const [change, expected] of [
    ['disable', 'AccessDenied'],
    ['delete', 'InvalidAccessKeyId'],
  ] as const) {
    it(`does nothing with a DeleteObjects body that finishes after its key was ${change}d`, async () => {
      const key = await gateway.createKey({ name: `${change}-mid-body`, permissions: ['read', 'write', 'delete'] });
      const deletesBefore = upstreamDeletes;
      const request = await slowDeleteObjects(key, 10);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const changed = await runCliProcess(['keys', change, key.accessKeyId], gateway.env);
      expect(changed.code, changed.stderr).toBe(0);
      const outcome = await request.finish();
      expect(outcome.status).toMatch(/^HTTP\/1\.1 403 /);
      expect(outcome.body).toContain(`<Code>${expected}</Code>`);
      expect(upstreamDeletes).toBe(deletesBefore);
    });
  }

  it('answers a DeleteObjects while many others trickle their bodies (they hold no parsing slot while waiting)', async () => {
    const key = await gateway.createKey({ name: 'patient', permissions: ['read', 'write', 'delete'] });
    const stalled = await Promise.all(Array.from({ length: 12 }, () => slowDeleteObjects(key, 9)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const prompt = await slowDeleteObjects(key, 0);
    const outcome = await prompt.finish();
    expect(outcome.status).toMatch(/^HTTP\/1\.1 200 /);
    expect(outcome.body).toContain('<DeleteResult');
    // The stalled ones were still waiting for their bodies all along.
    expect(stalled.some((request) => request.answered())).toBe(false);
    for (const request of stalled) request.socket.destroy();
  });

  it("holds at most a key's share of parked DeleteObjects bodies: one more is refused at once, other keys are served", async () => {
    // ~1.9 MB of a valid body (990 keys of 1900 characters), the closing tag never sent.
    const big = Buffer.from(`<Delete>${`<Object><Key>${'k'.repeat(1900)}</Key></Object>`.repeat(990)}</Delete>`);
    const sent = big.length - '</Delete>'.length;
    const key = await gateway.createKey({ name: 'parker', permissions: ['read', 'write', 'delete'] });
    const parked = [];
    for (let i = 0; i < 4; i++) parked.push(await slowDeleteObjects(key, sent, big));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const onePastShare = await slowDeleteObjects(key, sent, big);
    for (let waited = 0; !onePastShare.answered() && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    const refusal = await onePastShare.finish();
    expect(refusal.status).toMatch(/^HTTP\/1\.1 503 /);
    expect(refusal.body).toContain('<Code>SlowDown</Code>');
    expect(parked.some((request) => request.answered())).toBe(false);
    const other = await gateway.createKey({ name: 'bystander', permissions: ['read', 'write', 'delete'] });
    const prompt = await slowDeleteObjects(other, 0);
    expect((await prompt.finish()).status).toMatch(/^HTTP\/1\.1 200 /);
    for (const request of parked) request.socket.destroy();
  });

  it('holds each DeleteObjects answer against its key only until it is sent: answers read one after another never add up', async () => {
    // Keys outside its prefix: every entry is refused here and echoed in the answer (~1.2 MB each), nothing goes upstream.
    const key = await gateway.createKey({ name: 'reader', permissions: ['read', 'write', 'delete'], prefix: 'mine/' });
    const xml = Buffer.from(
      `<Delete>${Array.from({ length: 1000 }, (_, i) => `<Object><Key>theirs/${String(i).padStart(993, '0')}</Key></Object>`).join('')}</Delete>`,
    );
    // Ten answers are more than the key's 8 MiB share: a share not given back would refuse the last ones.
    for (let i = 0; i < 10; i++) {
      const answer = await (await slowDeleteObjects(key, 0, xml)).finish();
      expect(answer.status, answer.body.slice(0, 600)).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer.body.split('<Code>AccessDenied</Code>')).toHaveLength(1001);
    }
  });
});
