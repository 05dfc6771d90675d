/**
 * SigV4 POST policies (S3 "POST Object" browser form uploads): the form's signature over the
 * base64 policy, the policy document itself, and whether a form satisfies it. Pure functions; the
 * multipart parsing and streaming live in src/s3/post-object.ts.
 *
 * The signature is hex(HMAC-SHA256(kSigning, <policy as sent, base64>)), with kSigning derived
 * exactly as for header auth (date, region, "s3", "aws4_request").
 */
import { timingSafeEqual } from 'node:crypto';
import { S3Error } from '../errors.js';
import { parseCredential, validateCredentialScope } from './authorization.js';
import { formatIsoSeconds, parseAmzDate } from './dates.js';
import { hmacSha256, signingKeyFor, UNKNOWN_KEY_OWNER } from './signing-key.js';
import { AWS4_HMAC_SHA256, type KeyLookup } from './types.js';

/** One condition of a policy, with the text it came from (quoted back in "Policy Condition failed" errors). */
export type PolicyCondition =
  | { kind: 'eq'; field: string; value: string; text: string }
  | { kind: 'starts-with'; field: string; prefix: string; text: string }
  | { kind: 'content-length-range'; min: number; max: number; text: string };

export interface PostPolicy {
  expiration: Date;
  conditions: PolicyCondition[];
}

export interface ContentLengthRange {
  min: number;
  max: number;
}

/** Form fields that never need a policy condition (S3's rule); x-ignore-* fields are exempt too. */
const EXEMPT_FIELDS = new Set(['policy', 'x-amz-signature', 'file']);

/** Largest policy document accepted (S3 caps the fields before the file at 20 KB). */
export const MAX_POLICY_BYTES = 20 * 1024;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

function invalidPolicy(detail: string): S3Error {
  return new S3Error('InvalidPolicyDocument', `Invalid Policy: ${detail}`);
}

function deniedByPolicy(detail: string): S3Error {
  return new S3Error('AccessDenied', `Invalid according to Policy: ${detail}`);
}

/** Decodes and validates the base64 JSON policy. Throws InvalidPolicyDocument with what is wrong. */
export function decodePostPolicy(base64: string): PostPolicy {
  const trimmed = base64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) {
    throw invalidPolicy('Invalid Base64 encoding of the policy; send the policy JSON base64-encoded.');
  }
  const text = Buffer.from(trimmed, 'base64').toString('utf8');
  if (text.length > MAX_POLICY_BYTES) throw invalidPolicy(`The policy is larger than ${MAX_POLICY_BYTES} bytes.`);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw invalidPolicy('Invalid JSON.');
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw invalidPolicy('The policy must be a JSON object with "expiration" and "conditions".');
  }
  const { expiration, conditions } = document as Record<string, unknown>;
  if (expiration === undefined) throw invalidPolicy('Policy missing expiration.');
  if (typeof expiration !== 'string' || !ISO_8601.test(expiration) || Number.isNaN(Date.parse(expiration))) {
    throw invalidPolicy(`Invalid 'expiration' value: ${JSON.stringify(expiration)}; use ISO 8601 UTC, e.g. 2030-01-01T12:00:00.000Z.`);
  }
  if (conditions === undefined) throw invalidPolicy('Policy missing conditions.');
  if (!Array.isArray(conditions)) throw invalidPolicy('"conditions" must be a list.');
  return { expiration: new Date(Date.parse(expiration)), conditions: conditions.flatMap(parseCondition) };
}

function parseCondition(condition: unknown): PolicyCondition[] {
  const text = JSON.stringify(condition) ?? String(condition);
  if (Array.isArray(condition)) {
    const [operator, field, value] = condition as unknown[];
    const op = typeof operator === 'string' ? operator.toLowerCase() : operator;
    if (op === 'content-length-range') {
      const min = lengthBound(field);
      const max = lengthBound(value);
      if (condition.length !== 3 || min === null || max === null || min > max) {
        throw invalidPolicy(`Invalid content-length-range condition ${text}; use ["content-length-range", MIN_BYTES, MAX_BYTES].`);
      }
      return [{ kind: 'content-length-range', min, max, text }];
    }
    if (op !== 'eq' && op !== 'starts-with') {
      throw invalidPolicy(`Invalid Condition ${text}: the operator must be "eq", "starts-with" or "content-length-range".`);
    }
    if (condition.length !== 3 || typeof field !== 'string' || !field.startsWith('$') || field.length < 2 || typeof value !== 'string') {
      throw invalidPolicy(`Invalid Condition ${text}: use ["${op}", "$field", "value"].`);
    }
    const name = field.slice(1).toLowerCase();
    return [op === 'eq' ? { kind: 'eq', field: name, value, text } : { kind: 'starts-with', field: name, prefix: value, text }];
  }
  if (typeof condition === 'object' && condition !== null) {
    const entries = Object.entries(condition);
    if (entries.length === 0) throw invalidPolicy(`Invalid Condition ${text}: an object condition needs a field and its value.`);
    return entries.map(([field, value]) => {
      if (typeof value !== 'string') throw invalidPolicy(`Invalid Condition ${text}: the value of "${field}" must be a string.`);
      return { kind: 'eq', field: field.toLowerCase(), value, text: JSON.stringify({ [field]: value }) };
    });
  }
  throw invalidPolicy(`Invalid Condition ${text}: conditions are objects or lists.`);
}

/** A byte count in a content-length-range (JSON numbers or digit strings, as S3 accepts both). */
function lengthBound(value: unknown): number | null {
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** The authentication fields of a SigV4 POST form (lower-case names). */
export interface PostAuthFields {
  algorithm: string | undefined;
  credential: string | undefined;
  date: string | undefined;
  signature: string | undefined;
  policy: string | undefined;
}

export interface PostSignatureOptions<K> {
  lookup: KeyLookup<K>;
  regions: string[];
}

export interface VerifiedPostForm<K> {
  key: K;
  accessKeyId: string;
  policy: PostPolicy;
}

function missingField(name: string): S3Error {
  return new S3Error(
    'InvalidArgument',
    `Bucket POST must contain a field named '${name}'. If it is specified, please check the order of the fields (the file must come last).`,
    {
      details: { ArgumentName: name },
    },
  );
}

/**
 * Checks the form's SigV4 signature over its policy and decodes the policy. An unknown access key
 * costs the same HMAC work as a known one before InvalidAccessKeyId, like header auth (verify.ts).
 */
export function verifyPostSignature<K>(fields: PostAuthFields, options: PostSignatureOptions<K>): VerifiedPostForm<K> {
  if (fields.policy === undefined && fields.signature === undefined) {
    throw new S3Error('AccessDenied', 'Access Denied. Anonymous form uploads are not allowed: sign the form with a POST policy (see docs/browser-uploads.md).');
  }
  if (fields.policy === undefined) throw missingField('policy');
  if (fields.algorithm === undefined) throw missingField('x-amz-algorithm');
  if (fields.algorithm !== AWS4_HMAC_SHA256) {
    throw new S3Error('InvalidArgument', `x-amz-algorithm must be ${AWS4_HMAC_SHA256}; SigV2 (AWSAccessKeyId) forms are not supported.`, {
      details: { ArgumentName: 'x-amz-algorithm', ArgumentValue: fields.algorithm },
    });
  }
  if (fields.credential === undefined) throw missingField('x-amz-credential');
  if (fields.date === undefined) throw missingField('x-amz-date');
  if (fields.signature === undefined) throw missingField('x-amz-signature');
  if (parseAmzDate(fields.date) === undefined) {
    throw new S3Error('InvalidArgument', 'x-amz-date must be in the ISO 8601 basic format yyyyMMddTHHmmssZ.', {
      details: { ArgumentName: 'x-amz-date', ArgumentValue: fields.date },
    });
  }
  const credential = parseCredential(fields.credential, 'query');
  validateCredentialScope(credential, 'query', { regions: options.regions, service: 's3', amzDate: fields.date });

  const found = options.lookup(credential.accessKeyId);
  const signingKey = signingKeyFor(found ?? UNKNOWN_KEY_OWNER, credential.date, credential.region, 's3');
  const expected = hmacSha256(signingKey, fields.policy);
  const provided = /^[0-9a-fA-F]{64}$/.test(fields.signature) ? Buffer.from(fields.signature, 'hex') : undefined;
  const matched = provided !== undefined && timingSafeEqual(provided, expected);
  if (found === undefined) {
    throw new S3Error('InvalidAccessKeyId', undefined, { details: { AWSAccessKeyId: credential.accessKeyId } });
  }
  if (!matched) {
    throw new S3Error('SignatureDoesNotMatch', undefined, { details: { AWSAccessKeyId: credential.accessKeyId } });
  }
  return { key: found.key, accessKeyId: credential.accessKeyId, policy: decodePostPolicy(fields.policy) };
}

/**
 * Checks the form against the policy: not expired, every condition holds, every field (but the
 * exempt ones) is named by a condition. `fields` has lower-case names and includes `bucket` (the
 * bucket the form was posted to). Values are compared as sent, before ${filename} substitution, as
 * S3 does. Returns the content-length-range to enforce while the file arrives, if any.
 */
export function checkPostPolicy(policy: PostPolicy, fields: ReadonlyMap<string, string>, now: Date = new Date()): ContentLengthRange | null {
  if (policy.expiration.getTime() <= now.getTime()) {
    throw deniedByPolicy(`Policy expired (at ${formatIsoSeconds(policy.expiration)}; server time ${formatIsoSeconds(now)}). Issue a new form.`);
  }
  let range: ContentLengthRange | null = null;
  const covered = new Set<string>();
  for (const condition of policy.conditions) {
    if (condition.kind === 'content-length-range') {
      // Several ranges all have to hold: their intersection.
      range =
        range === null ? { min: condition.min, max: condition.max } : { min: Math.max(range.min, condition.min), max: Math.min(range.max, condition.max) };
      continue;
    }
    covered.add(condition.field);
    const value = fields.get(condition.field) ?? '';
    const holds = condition.kind === 'eq' ? value === condition.value : value.startsWith(condition.prefix);
    if (!holds) throw deniedByPolicy(`Policy Condition failed: ${condition.text}`);
  }
  const extra = [...fields.keys()].filter((name) => !EXEMPT_FIELDS.has(name) && !name.startsWith('x-ignore-') && !covered.has(name));
  if (extra.length > 0) {
    throw deniedByPolicy(`Extra input fields: ${extra.join(', ')}. Every form field needs a condition in the policy (or an x-ignore- prefix).`);
  }
  return range;
}

/** EntityTooSmall / EntityTooLarge for a file outside the policy's content-length-range. */
export function contentLengthProblem(range: ContentLengthRange, size: number): S3Error | null {
  if (size < range.min) {
    return new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size', {
      details: { ProposedSize: size, MinSizeAllowed: range.min },
    });
  }
  if (size > range.max) {
    return new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      details: { ProposedSize: size, MaxSizeAllowed: range.max },
    });
  }
  return null;
}
