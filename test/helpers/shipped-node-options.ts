/**
 * The Node flags keygate ships with: the Docker image's `ENV NODE_OPTIONS` (the Dockerfile is the
 * single source). Integration tests, the soak and the benchmark run the gateway with them, so what
 * they measure and prove (RSS, no heap exhaustion under load) is what the image does.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export function shippedNodeOptions(): string {
  const dockerfile = readFileSync(path.resolve(import.meta.dirname, '../../Dockerfile'), 'utf8');
  const match = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile);
  if (!match) throw new Error('Dockerfile has no `ENV NODE_OPTIONS="…"` line; the tests and the bench run the gateway with it.');
  return match[1]!;
}
