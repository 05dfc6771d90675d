/**
 * The "node floor" of the benchmark: the least a Node proxy can do per request on this machine.
 * node:http in front, one undici Pool with keep-alive connections behind, every request passed
 * through as it is (no authentication, no re-signing, no logging, no metrics). The gateway is judged
 * against it: what keygate costs beyond this is keygate's own work.
 *
 * Plain JavaScript run by bare node (no transpiler in the process), like the shipped gateway.
 * Usage: node bench/node-floor.mjs <upstream origin>; prints "listening <port>" when ready.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: node bench/node-floor.mjs http://127.0.0.1:PORT');

const pool = new Pool(upstream, { connections: 64, keepAliveTimeout: 30_000 });
/** Connection-level headers are the hop's own, never passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function passHeaders(headers) {
  const out = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0';
  pool.request(
    {
      path: req.url,
      method: req.method,
      headers: passHeaders(req.headers),
      body: hasBody ? req : null,
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
