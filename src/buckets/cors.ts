/**
 * CORS rules stored per bucket (the shape of S3's CORSRule, in camelCase), their validation, and
 * reading them from the documents operators already have: keygate's own list of rules, or S3's
 * CORSConfiguration JSON (`{"CORSRules": [{"AllowedOrigins": …}]}`, as `aws s3api put-bucket-cors`
 * takes it). How the rules are applied to requests is src/buckets/cors-match.ts.
 */

export interface CorsRule {
  id?: string;
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders?: string[];
  exposeHeaders?: string[];
  maxAgeSeconds?: number;
}

/** The methods S3 accepts in AllowedMethod. */
export const CORS_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'] as const;

/** S3 allows at most 100 rules per bucket. */
export const MAX_CORS_RULES = 100;

/** Why `rules` is not a list of CORS rules, or null when it is. */
export function corsRulesProblem(rules: unknown): string | null {
  if (!Array.isArray(rules)) return 'CORS rules must be a list.';
  if (rules.length > MAX_CORS_RULES) return `A bucket takes at most ${MAX_CORS_RULES} CORS rules.`;
  for (const [index, rule] of rules.entries()) {
    const which = `CORS rule ${index + 1}`;
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) return `${which} must be an object.`;
    const r = rule as Record<string, unknown>;
    const unknown = Object.keys(r).filter((field) => !RULE_FIELDS.includes(field));
    if (unknown.length > 0) return `${which} has unknown field "${unknown[0]}"; use ${RULE_FIELDS.join(', ')}.`;
    for (const field of ['allowedOrigins', 'allowedMethods'] as const) {
      if (!isStringList(r[field]) || r[field].length === 0) {
        return `${which} needs ${field} as a non-empty list of strings.`;
      }
    }
    for (const field of ['allowedHeaders', 'exposeHeaders'] as const) {
      if (r[field] !== undefined && !isStringList(r[field])) return `${which}: ${field} must be a list of strings.`;
    }
    for (const method of r.allowedMethods as string[]) {
      if (!(CORS_METHODS as readonly string[]).includes(method)) {
        return `${which}: "${method}" is not an allowed method; use ${CORS_METHODS.join(', ')} (upper case).`;
      }
    }
    for (const [field, values] of [
      ['allowedOrigins', r.allowedOrigins],
      ['allowedHeaders', r.allowedHeaders],
    ] as const) {
      for (const value of (values as string[] | undefined) ?? []) {
        if (value === '' || /\s/.test(value)) return `${which}: ${field} entries must be non-empty and without spaces ("${value}").`;
        if (/[^\x21-\x7e]/.test(value)) {
          return `${which}: ${field} entry ${JSON.stringify(value)} has a control or non-ASCII character; origins and header names are ASCII (write internationalized hosts in punycode, xn--…).`;
        }
        if (value.split('*').length > 2) return `${which}: "${value}" has more than one "*"; S3 allows one wildcard per entry.`;
      }
    }
    for (const value of (r.exposeHeaders as string[] | undefined) ?? []) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) return `${which}: exposeHeaders entry "${value}" is not a header name.`;
    }
    if (r.maxAgeSeconds !== undefined && !(Number.isSafeInteger(r.maxAgeSeconds) && (r.maxAgeSeconds as number) >= 0)) {
      return `${which}: maxAgeSeconds must be a non-negative integer.`;
    }
    if (r.id !== undefined && typeof r.id !== 'string') return `${which}: id must be a string.`;
  }
  return null;
}

const RULE_FIELDS = ['id', 'allowedOrigins', 'allowedMethods', 'allowedHeaders', 'exposeHeaders', 'maxAgeSeconds'];

/** S3's CORSRule member names -> keygate's. */
const S3_FIELD_NAMES: Record<string, keyof CorsRule> = {
  ID: 'id',
  AllowedOrigins: 'allowedOrigins',
  AllowedMethods: 'allowedMethods',
  AllowedHeaders: 'allowedHeaders',
  ExposeHeaders: 'exposeHeaders',
  MaxAgeSeconds: 'maxAgeSeconds',
};

export class CorsDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorsDocumentError';
  }
}

/**
 * Reads CORS rules from a parsed JSON document: a list of keygate rules, `{"rules": […]}`, or S3's
 * `{"CORSRules": […]}` / a list of S3-style rules (AllowedOrigins, AllowedMethods…). Throws
 * CorsDocumentError saying what is wrong.
 */
export function parseCorsDocument(document: unknown): CorsRule[] {
  let list: unknown = document;
  if (typeof document === 'object' && document !== null && !Array.isArray(document)) {
    const keys = Object.keys(document);
    if (keys.length === 1 && (keys[0] === 'CORSRules' || keys[0] === 'rules')) list = (document as Record<string, unknown>)[keys[0]];
    else throw new CorsDocumentError('Send a list of CORS rules, {"rules": [...]}, or S3\'s {"CORSRules": [...]} (see docs/browser-uploads.md).');
  }
  if (!Array.isArray(list)) throw new CorsDocumentError('CORS rules must be a list.');
  const rules = (list as unknown[]).map((rule) => (isS3StyleRule(rule) ? fromS3Rule(rule) : rule));
  const problem = corsRulesProblem(rules);
  if (problem !== null) throw new CorsDocumentError(problem);
  return rules as CorsRule[];
}

function isS3StyleRule(rule: unknown): rule is Record<string, unknown> {
  return typeof rule === 'object' && rule !== null && Object.keys(rule).some((field) => field in S3_FIELD_NAMES);
}

function fromS3Rule(rule: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(rule)) {
    const name = S3_FIELD_NAMES[field];
    if (name === undefined) throw new CorsDocumentError(`Unknown CORSRule member "${field}"; use ${Object.keys(S3_FIELD_NAMES).join(', ')}.`);
    out[name] = value;
  }
  return out;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
