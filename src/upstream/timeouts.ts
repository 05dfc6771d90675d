/**
 * How long the gateway waits for an upstream: to accept a connection, to answer (response headers,
 * also the longest an upload may stall on the upstream side), and between two response body
 * chunks. Read from the environment so operators of slow upstreams (and the fault-injection tests)
 * can tune them; the defaults suit RunPod, whose CompleteMultipartUpload of a large object can take
 * minutes before the first response byte.
 */
import { ConfigError } from '../config.js';

export interface UpstreamTimeouts {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

export const DEFAULT_UPSTREAM_TIMEOUTS: Readonly<UpstreamTimeouts> = Object.freeze({
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 5 * 60_000,
  bodyTimeoutMs: 5 * 60_000,
});

/** Environment variable -> setting, with what each one bounds (for error messages). */
export const UPSTREAM_TIMEOUT_VARIABLES = {
  KEYGATE_UPSTREAM_CONNECT_TIMEOUT_MS: 'connectTimeoutMs',
  KEYGATE_UPSTREAM_HEADERS_TIMEOUT_MS: 'headersTimeoutMs',
  KEYGATE_UPSTREAM_BODY_TIMEOUT_MS: 'bodyTimeoutMs',
} as const satisfies Record<string, keyof UpstreamTimeouts>;

/** A day: longer waits are configuration mistakes (and overflow Node's timers past ~24.8 days anyway). */
const MAX_TIMEOUT_MS = 24 * 60 * 60_000;

/** The upstream timeouts set in `env`, defaults for the rest. Throws ConfigError naming a bad variable. */
export function upstreamTimeoutsFromEnv(env: Record<string, string | undefined>): UpstreamTimeouts {
  const timeouts: UpstreamTimeouts = { ...DEFAULT_UPSTREAM_TIMEOUTS };
  for (const [variable, setting] of Object.entries(UPSTREAM_TIMEOUT_VARIABLES)) {
    const raw = env[variable]?.trim();
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < 1 || value > MAX_TIMEOUT_MS) {
      throw new ConfigError(
        variable,
        `"${raw}" is not a timeout; use whole milliseconds between 1 and ${MAX_TIMEOUT_MS}, e.g. ${DEFAULT_UPSTREAM_TIMEOUTS[setting]} (the default).`,
      );
    }
    timeouts[setting] = value;
  }
  return timeouts;
}
