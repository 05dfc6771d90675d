/**
 * Signs a request to a gateway with an rs_ key, the way a client would (aws4 — not the code under
 * test), over the literal path, for tests that send it raw (node:http or a socket) so every byte is
 * under their control.
 */
import { createHash } from 'node:crypto';
import aws4 from 'aws4';

export interface SigningKey {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface SignOptions {
  body?: Buffer;
  /** Extra headers to sign and send (they override the defaults below). */
  headers?: Record<string, string>;
}

/**
 * The headers to send: x-amz-content-sha256 is the body's SHA-256 (UNSIGNED-PAYLOAD without a body),
 * Content-Length is set for a body, and Host is `host` (e.g. `127.0.0.1:9000`).
 */
export function signedHeaders(key: SigningKey, host: string, method: string, path: string, options: SignOptions = {}): Record<string, string> {
  const { body } = options;
  const signed = aws4.sign(
    {
      host,
      method,
      path,
      service: 's3',
      region: key.region,
      headers: {
        'x-amz-content-sha256': body ? createHash('sha256').update(body).digest('hex') : 'UNSIGNED-PAYLOAD',
        ...(body ? { 'content-length': String(body.length) } : {}),
        ...options.headers,
      },
      doNotEncodePath: true,
    },
    { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
  );
  return signed.headers as Record<string, string>;
}
