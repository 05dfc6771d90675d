/**
 * Where an S3 request points: bucket and object key, from path-style `/bucket/key` or virtual-host
 * `bucket.<domain>/key` addressing. Works on the raw request target because WHATWG URL parsing
 * would resolve `..` segments and collapse nothing else consistently — S3 keys are opaque bytes.
 */
import { bucketNameProblem } from '../buckets/validate.js';
import { S3Error } from '../errors.js';

export interface S3Address {
  bucket: string | null;
  /** Decoded object key, exactly as the client meant it (may contain `//`, `..`, unicode, spaces). */
  key: string | null;
  /** Raw (still percent-encoded) path, as needed for the SigV4 canonical request. */
  rawPath: string;
  /** Raw query string without `?`. */
  rawQuery: string;
  /** Decoded query parameters in order of appearance. */
  query: Array<[string, string]>;
  style: 'path' | 'virtual-host';
}

export const MAX_KEY_BYTES = 1024;

/**
 * Splits a raw request target (`/path?query`) and the Host header into an S3 address.
 * `domain` enables virtual-host addressing for hosts of the form `<bucket>.<domain>`.
 */
export function parseAddress(requestTarget: string, host: string | undefined, domain: string | null): S3Address {
  if (!requestTarget.startsWith('/')) {
    throw new S3Error('InvalidRequest', 'The request target must be a path starting with "/" (absolute-form URLs are not accepted).');
  }
  const queryStart = requestTarget.indexOf('?');
  const rawPath = queryStart === -1 ? requestTarget : requestTarget.slice(0, queryStart);
  const rawQuery = queryStart === -1 ? '' : requestTarget.slice(queryStart + 1);
  const query = parseQuery(rawQuery);

  const virtualBucket = domain ? bucketFromHost(host, domain) : null;
  let bucket: string | null;
  let encodedKey: string | null;
  if (virtualBucket !== null) {
    bucket = virtualBucket;
    encodedKey = rawPath.length > 1 ? rawPath.slice(1) : null;
  } else {
    const rest = rawPath.slice(1);
    if (rest === '') {
      bucket = null;
      encodedKey = null;
    } else {
      const slash = rest.indexOf('/');
      bucket = decode(slash === -1 ? rest : rest.slice(0, slash));
      encodedKey = slash === -1 || slash === rest.length - 1 ? null : rest.slice(slash + 1);
    }
  }

  const bucketProblem = bucket === null ? null : bucketNameProblem(bucket);
  if (bucketProblem !== null) {
    throw new S3Error('InvalidBucketName', `The bucket name ${bucketProblem}`, { details: { BucketName: bucket! } });
  }
  const key = encodedKey === null ? null : decode(encodedKey);
  if (key !== null && Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', `Object keys are limited to ${MAX_KEY_BYTES} bytes of UTF-8.`);
  }
  return { bucket, key, rawPath, rawQuery, query, style: virtualBucket !== null ? 'virtual-host' : 'path' };
}

function bucketFromHost(host: string | undefined, domain: string): string | null {
  if (!host) return null;
  const hostname = host.toLowerCase();
  // KEYGATE_DOMAIN may include a port; compare with and without it.
  const bare = domain.replace(/:\d+$/, '');
  for (const suffix of [`.${domain}`, `.${bare}`]) {
    const withoutPort = suffix.includes(':') ? hostname : hostname.replace(/:\d+$/, '');
    if (withoutPort.endsWith(suffix) && withoutPort.length > suffix.length) {
      return withoutPort.slice(0, -suffix.length);
    }
  }
  return null;
}

/**
 * Decodes the query like S3 does: `+` stays a literal plus only when percent-encoded; a raw `+`
 * means space. A parameter given twice is refused: which value counts would be a guess (and the
 * upstream's guess could differ from the gateway's), so no operation ever sees one.
 */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  if (rawQuery === '') return [];
  const pairs: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeQueryComponent(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? '' : part.slice(eq + 1);
    if (seen.has(name)) {
      throw new S3Error('InvalidArgument', `The query parameter "${name}" appears more than once; send each parameter once.`, {
        details: { ArgumentName: name },
      });
    }
    seen.add(name);
    pairs.push([name, decodeQueryComponent(value)]);
  }
  return pairs;
}

/** A query name or value: a raw '+' is a space, then percent-decoded. */
function decodeQueryComponent(text: string): string {
  return decode(text.includes('+') ? text.replace(/\+/g, ' ') : text);
}

function decode(text: string): string {
  // Most names, keys and parameters have no escape at all.
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw new S3Error('InvalidArgument', 'The request path or query contains an invalid percent-encoding; encode "%" as "%25".', {
      status: 400,
    });
  }
}
