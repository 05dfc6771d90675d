/**
 * The "node floor" of the benchmark: the least a Node proxy can do per request on this machine.
 * node:http in front, one undici Pool with keep-alive connections behind, every request passed
 * through as it is (no authentication, no re-signing, no logging, no metrics). The gateway is judged
 * against it: what keygate costs beyond this is keygate's own work.
 *
 * Plain JavaScript run by bare node (no transpiler in the process), like the shipped gateway.
 * Usage: node bench/node-floor.mjs <upstream origin>; prints "listening <port>" when ready.
 */
import { passHeaders, runFloorProxy } from './floor-proxy.mjs';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: node bench/node-floor.mjs http://127.0.0.1:PORT');

runFloorProxy(upstream, (req) => {
  const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0';
  return { path: req.url, headers: passHeaders(req.headers), body: hasBody ? req : null };
});
