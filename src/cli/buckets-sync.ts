/** `keygate buckets sync`: imports RunPod network volumes into the bucket registry. */
import { EXIT_USAGE } from './errors.js';
import type { CliIo } from './io.js';

export async function runBucketsSync(_args: string[], io: CliIo): Promise<number> {
  io.stderr('keygate buckets sync is not available yet in this build.\n');
  return EXIT_USAGE;
}
