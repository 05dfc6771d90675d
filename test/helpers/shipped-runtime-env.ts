/**
 * The runtime environment keygate ships with: the Docker image's `ENV NODE_OPTIONS` and
 * `ENV MALLOC_ARENA_MAX` (the Dockerfile is the single source). Integration tests, the soak and the
 * benchmark run the gateway (and the bench's node floor) with them, so what they measure and prove
 * (RSS, no heap exhaustion under load) is what the image does.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const SHIPPED = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'] as const;

export function shippedRuntimeEnv(): Record<(typeof SHIPPED)[number], string> {
  const dockerfile = readFileSync(path.resolve(import.meta.dirname, '../../Dockerfile'), 'utf8');
  const env = {} as Record<(typeof SHIPPED)[number], string>;
  for (const name of SHIPPED) {
    const match = new RegExp(`^ENV ${name}="([^"]*)"$`, 'm').exec(dockerfile);
    if (!match) throw new Error(`Dockerfile has no \`ENV ${name}="…"\` line; the tests and the bench run the gateway with it.`);
    env[name] = match[1]!;
  }
  return env;
}
