/**
 * The "signing floor" of the benchmark: the node floor (bench/node-floor.mjs) plus the two pieces
 * of work no SigV4-re-signing gateway can skip, taken from the built gateway itself: verifying the
 * client's SigV4 signature (dist/sigv4/verify.js, the gateway's verifier) and re-signing the
 * upstream request with aws4 (dist/upstream/signing.js, the gateway's signer). Nothing else: no key
 * store, no scope, no access log, no metrics. The gateway's CPU per request beyond this is the
 * cost of everything it does around those two signatures.
 *
 * It takes GET and HEAD presigned with the upstream's own credentials (as the node floor does)
 * and answers 403 to anything that does not verify. Plain JavaScript run by bare node, like the
 * shipped gateway (the proxy itself is bench/floor-proxy.mjs, shared with the node floor); needs
 * `npm run build` first.
 * Usage: node bench/signing-floor.mjs <upstream origin> <access key id> <secret> <region>;
 * prints "listening <port>" when ready.
 */
import { URL } from 'node:url';
import { verifyRequest } from '../dist/sigv4/verify.js';
import { signUpstreamRequest } from '../dist/upstream/signing.js';
import { runFloorProxy } from './floor-proxy.mjs';

const [upstream, accessKeyId, secretAccessKey, region] = process.argv.slice(2);
if (!upstream || !accessKeyId || !secretAccessKey || !region) {
  throw new Error('usage: node bench/signing-floor.mjs http://127.0.0.1:PORT ACCESS_KEY_ID SECRET REGION');
}

/** The one key the verifier knows: the upstream's own (the bench presigns the floors' URLs with it). */
const KEY = { secretAccessKey };
/** What the gateway's signer needs of a route: the endpoint, region and credentials (the bucket is in the path here). */
const TARGET = { endpoint: new URL(upstream), region, credentials: { accessKeyId, secretAccessKey } };

runFloorProxy(upstream, (req) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') return null;
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
  try {
    verifyRequest(
      { method: req.method, rawPath, rawQuery: queryAt < 0 ? '' : target.slice(queryAt + 1), headers: req.headersDistinct },
      { lookup: (id) => (id === accessKeyId ? KEY : undefined), regions: [region] },
    );
  } catch {
    return null;
  }
  // The presigned query authenticated this request only: the upstream gets the bare path, signed anew.
  const signed = signUpstreamRequest(TARGET, req.method, rawPath, '', {});
  return { path: signed.pathWithQuery, headers: signed.headers, body: null };
});
