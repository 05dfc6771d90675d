import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { DEFAULT_UPSTREAM_TIMEOUTS, upstreamTimeoutsFromEnv } from '../../src/upstream/timeouts.js';

describe('upstream timeouts from the environment', () => {
  it('defaults to minutes (a large CompleteMultipartUpload may take that long upstream)', () => {
    expect(upstreamTimeoutsFromEnv({})).toEqual(DEFAULT_UPSTREAM_TIMEOUTS);
    expect(DEFAULT_UPSTREAM_TIMEOUTS.headersTimeoutMs).toBe(300_000);
  });

  it('reads each variable in whole milliseconds', () => {
    expect(
      upstreamTimeoutsFromEnv({
        KEYGATE_UPSTREAM_CONNECT_TIMEOUT_MS: '2000',
        KEYGATE_UPSTREAM_HEADERS_TIMEOUT_MS: ' 1500 ',
        KEYGATE_UPSTREAM_BODY_TIMEOUT_MS: '',
      }),
    ).toEqual({ connectTimeoutMs: 2000, headersTimeoutMs: 1500, bodyTimeoutMs: DEFAULT_UPSTREAM_TIMEOUTS.bodyTimeoutMs });
  });

  it.each(['0', '-5', '1.5', '10s', '999999999999'])('refuses %j naming the variable and the expected form', (value) => {
    let error: unknown;
    try {
      upstreamTimeoutsFromEnv({ KEYGATE_UPSTREAM_BODY_TIMEOUT_MS: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('KEYGATE_UPSTREAM_BODY_TIMEOUT_MS');
    expect((error as Error).message).toMatch(/whole milliseconds/);
  });
});
