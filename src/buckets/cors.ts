/**
 * CORS rules stored per bucket (the shape of S3's CORSRule). Only stored for now; the S3 listener
 * decides how to apply them.
 */

export interface CorsRule {
  id?: string;
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders?: string[];
  exposeHeaders?: string[];
  maxAgeSeconds?: number;
}

/** Why `rules` is not a list of CORS rules, or null when it is. */
export function corsRulesProblem(rules: unknown): string | null {
  if (!Array.isArray(rules)) return 'CORS rules must be a list.';
  for (const [index, rule] of rules.entries()) {
    if (typeof rule !== 'object' || rule === null) return `CORS rule ${index + 1} must be an object.`;
    const r = rule as Record<string, unknown>;
    for (const field of ['allowedOrigins', 'allowedMethods'] as const) {
      if (!isStringList(r[field]) || (r[field] as string[]).length === 0) {
        return `CORS rule ${index + 1} needs ${field} as a non-empty list of strings.`;
      }
    }
    for (const field of ['allowedHeaders', 'exposeHeaders'] as const) {
      if (r[field] !== undefined && !isStringList(r[field])) return `CORS rule ${index + 1}: ${field} must be a list of strings.`;
    }
    if (r.maxAgeSeconds !== undefined && !(Number.isSafeInteger(r.maxAgeSeconds) && (r.maxAgeSeconds as number) >= 0)) {
      return `CORS rule ${index + 1}: maxAgeSeconds must be a non-negative integer.`;
    }
    if (r.id !== undefined && typeof r.id !== 'string') return `CORS rule ${index + 1}: id must be a string.`;
  }
  return null;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
