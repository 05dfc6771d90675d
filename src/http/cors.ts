/**
 * CORS on the S3 listener, from each bucket's rules in the registry (read per request, so a change
 * applies to the next request). Preflights (OPTIONS) are answered here without authentication and
 * never reach the upstream; actual requests from an allowed origin get Access-Control-* headers on
 * whatever response follows, errors included, so browser code can read them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CORS_METHODS, type CorsRule } from '../buckets/cors.js';
import { actualRequestHeaders, CORS_VARY, matchCorsRule, parseRequestHeaderList, preflightHeaders } from '../buckets/cors-match.js';
import type { S3Address } from '../s3/address.js';
import { S3Error } from '../errors.js';
import { headerValue } from '../header-value.js';

/** Where the rules come from: the bucket registry (store.buckets). */
export interface CorsRuleSource {
  /** As of the request's start (src/store/store.ts). */
  findForRouting(name: string): { readonly cors: readonly CorsRule[] | null } | null;
}

const NOT_ALLOWED =
  "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
const NOT_ENABLED = 'CORSResponse: CORS is not enabled for this bucket.';

/**
 * Answers an OPTIONS preflight: 200 with the matching rule's headers, or throws the S3 error
 * (400 BadRequest without Origin / Access-Control-Request-Method, 403 AccessForbidden otherwise).
 * Unregistered buckets and buckets without rules get the same answer, so preflights cannot probe
 * the registry.
 */
export function answerPreflight(source: CorsRuleSource, req: IncomingMessage, res: ServerResponse, address: S3Address): void {
  req.resume();
  const origin = headerValue(req.headers, 'origin');
  const requestMethod = headerValue(req.headers, 'access-control-request-method');
  const resourceType = address.key === null ? 'BUCKET' : 'OBJECT';
  if (origin === undefined || origin === '') {
    throw new S3Error('BadRequest', 'Insufficient information. Origin request header needed.');
  }
  if (requestMethod === undefined || !(CORS_METHODS as readonly string[]).includes(requestMethod)) {
    throw new S3Error('BadRequest', `Invalid Access-Control-Request-Method: ${requestMethod ?? 'null'}. Preflights name one of ${CORS_METHODS.join(', ')}.`);
  }
  const details = { Method: requestMethod, ResourceType: resourceType };
  const rules = address.bucket === null ? null : (source.findForRouting(address.bucket)?.cors ?? null);
  if (rules === null || rules.length === 0) {
    throw new S3Error('AccessForbidden', NOT_ENABLED, { details, headers: { vary: CORS_VARY } });
  }
  const requestHeaders = parseRequestHeaderList(headerValue(req.headers, 'access-control-request-headers'));
  const match = matchCorsRule(rules, origin, requestMethod, requestHeaders);
  if (match === null) throw new S3Error('AccessForbidden', NOT_ALLOWED, { details, headers: { vary: CORS_VARY } });
  res.writeHead(200, { ...preflightHeaders(match, requestHeaders), 'content-length': '0' });
  res.end();
}

/**
 * Sets Access-Control-* headers for an actual request carrying Origin, when a rule of its bucket
 * allows that origin and method. Set before anything is written, so every later response (success,
 * upstream error, gateway error) carries them.
 */
export function applyCorsHeaders(source: CorsRuleSource, req: IncomingMessage, res: ServerResponse, bucket: string | null, method: string): void {
  const origin = headerValue(req.headers, 'origin');
  if (origin === undefined || origin === '' || bucket === null) return;
  const rules = source.findForRouting(bucket)?.cors ?? null;
  if (rules === null || rules.length === 0) return;
  res.setHeader('vary', CORS_VARY);
  const match = matchCorsRule(rules, origin, method);
  if (match === null) return;
  for (const [name, value] of Object.entries(actualRequestHeaders(match))) res.setHeader(name, value);
}
