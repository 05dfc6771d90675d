/**
 * The proxy both benchmark floors run (bench/node-floor.mjs, bench/signing-floor.mjs): node:http in
 * front, one undici Pool with keep-alive connections behind, the answer's status and headers passed
 * back (hop-by-hop ones dropped) and its body piped through. Each floor says only what it sends
 * upstream for a request, or null to refuse it with 403.
 *
 * Plain JavaScript run by bare node (no transpiler in the process), like the shipped gateway.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

/** Connection-level headers are the hop's own, never passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export function passHeaders(headers) {
  const out = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

/**
 * Serves on a free loopback port, printing "listening <port>" when ready, until SIGTERM.
 * upstreamRequest(req) -> { path, headers, body } to send, or null to answer 403.
 */
export function runFloorProxy(upstream, upstreamRequest) {
  const pool = new Pool(upstream, { connections: 64, keepAliveTimeout: 30_000 });
  const server = createServer((req, res) => {
    const sent = upstreamRequest(req);
    if (sent === null) {
      res.writeHead(403, { 'content-length': '0' }).end();
      return;
    }
    pool.request(
      {
        path: sent.path,
        method: req.method,
        headers: sent.headers,
        body: sent.body,
        // As in the gateway: undici otherwise closes the upstream connection after every HEAD.
        reset: req.method === 'HEAD' ? false : undefined,
      },
      (error, answer) => {
        if (error) {
          res.writeHead(502).end();
          return;
        }
        res.writeHead(answer.statusCode, passHeaders(answer.headers));
        answer.body.pipe(res);
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
  process.on('SIGTERM', () => {
    server.close(() => void pool.close().then(() => process.exit(0)));
    server.closeAllConnections();
  });
}
