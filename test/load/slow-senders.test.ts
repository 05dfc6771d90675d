/**
 * A sender that trickles its request headers (slowloris: one byte now and then, never finishing)
 * must lose its connection once the headers deadline passes (30 s), however steadily it trickles:
 * each byte resets an idle timer, so only a deadline on the whole head stops it. Meanwhile everyone
 * else is served.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type Gateway } from '../helpers/gateway.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

/** The gateway's headers deadline (src/server.ts), plus how often Node checks it, plus margin. */
const HEADERS_DEADLINE_MS = 30_000;
const WORST_CASE_MS = HEADERS_DEADLINE_MS + 5_000 + 15_000;

describe('slow senders', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let port: number;

  beforeAll(async () => {
    upstream = await startS3rver();
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: 'off' });
    port = Number(new URL(gateway.url).port);
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  /** Trickles an endless header block, one byte every `everyMs`; resolves with what came back and when the gateway closed. */
  function slowloris(everyMs: number): Promise<{ answer: string; closedAfterMs: number }> {
    const started = Date.now();
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let answer = '';
      const head = Buffer.from(`GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Padding: `);
      let sent = 0;
      const timer = setInterval(() => {
        if (socket.destroyed) return;
        socket.write(sent < head.length ? head.subarray(sent, sent + 1) : 'a');
        sent++;
      }, everyMs);
      const giveUp = setTimeout(() => socket.destroy(), WORST_CASE_MS + 10_000);
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        clearTimeout(giveUp);
        resolve({ answer, closedAfterMs: Date.now() - started });
      });
    });
  }

  it(
    'closes connections whose headers never finish once the headers deadline passed, and serves others meanwhile',
    async () => {
      const senders = Array.from({ length: 20 }, () => slowloris(500));
      // Others are served while the slow senders hold their connections.
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const health = await fetch(`${gateway.url}/_health`);
        expect(health.status).toBe(200);
      }
      const outcomes = await Promise.all(senders);
      for (const { answer, closedAfterMs } of outcomes) {
        expect(closedAfterMs).toBeLessThan(WORST_CASE_MS);
        // S3's RequestTimeout (a 400), or nothing when the socket was no longer writable.
        if (answer !== '') expect(answer).toMatch(/^HTTP\/1\.1 400 [\s\S]*<Code>RequestTimeout<\/Code>/);
      }
    },
    WORST_CASE_MS + 30_000,
  );
});
