/**
 * Building POST Object forms for tests, independently of the gateway's code: a SigV4 POST policy
 * signer and a multipart/form-data encoder that can send any part as a field or as a file.
 */
import { createHmac } from 'node:crypto';

export interface SigningIdentity {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]|\.\d{3}/g, '');
}

function signingKey(key: SigningIdentity, date: string): Buffer {
  const hmac = (k: Buffer | string, data: string) => createHmac('sha256', k).update(data).digest();
  return hmac(hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, date.slice(0, 8)), key.region), 's3'), 'aws4_request');
}

/** The auth fields of a form whose policy has these conditions (plus the algorithm/credential/date ones). */
export function signPolicy(key: SigningIdentity, conditions: unknown[], options: { expiration?: Date; now?: Date } = {}): Record<string, string> {
  const now = options.now ?? new Date();
  const date = amzDate(now);
  const credential = `${key.accessKeyId}/${date.slice(0, 8)}/${key.region}/s3/aws4_request`;
  const policy = {
    expiration: (options.expiration ?? new Date(now.getTime() + 10 * 60_000)).toISOString(),
    conditions: [...conditions, { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' }, { 'x-amz-credential': credential }, { 'x-amz-date': date }],
  };
  const encoded = Buffer.from(JSON.stringify(policy)).toString('base64');
  return signPolicyText(key, encoded, now);
}

/** Signs an arbitrary (possibly broken) base64 policy text with the key. */
export function signPolicyText(key: SigningIdentity, encoded: string, now: Date = new Date()): Record<string, string> {
  const date = amzDate(now);
  return {
    policy: encoded,
    'x-amz-algorithm': 'AWS4-HMAC-SHA256',
    'x-amz-credential': `${key.accessKeyId}/${date.slice(0, 8)}/${key.region}/s3/aws4_request`,
    'x-amz-date': date,
    'x-amz-signature': createHmac('sha256', signingKey(key, date)).update(encoded).digest('hex'),
  };
}

export interface FormPart {
  name: string;
  value: string | Buffer;
  /** Sent as a file part (with a filename) when set. */
  filename?: string;
  contentType?: string;
}

/** A multipart/form-data body of the parts, in order, and its Content-Type. */
export function multipartForm(parts: FormPart[], boundary = `----keygate-test-${Math.random().toString(16).slice(2)}`): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = part.filename === undefined ? `form-data; name="${part.name}"` : `form-data; name="${part.name}"; filename="${part.filename}"`;
    const type = part.contentType === undefined ? '' : `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(part.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
