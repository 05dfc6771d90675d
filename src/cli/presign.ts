/** `keygate presign`: prints a presigned URL for an access key. */
import { EXIT_USAGE } from './errors.js';
import type { CliIo } from './io.js';

export async function runPresign(_args: string[], io: CliIo): Promise<number> {
  io.stderr('keygate presign is not available yet in this build.\n');
  return EXIT_USAGE;
}
