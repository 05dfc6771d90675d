/**
 * `keygate presign ACCESS_KEY_ID s3://BUCKET/KEY [--method GET|PUT|HEAD|DELETE] [--expires-in 600]`: prints the URL.
 * `keygate presign ACCESS_KEY_ID s3://BUCKET/KEY-PREFIX --method POST [--max-size N]`: prints a browser form as JSON.
 */
import { PresignError, issuePresignedPost, issuePresignedUrl } from '../presign.js';
import { expectPositionals, parseCommand, stringOption } from './args.js';
import { CommandFailure, EXIT_OK, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { withStore } from './store.js';

const HELP = 'keygate presign --help';
export async function runPresign(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { method: { type: 'string' }, 'expires-in': { type: 'string' }, 'max-size': { type: 'string' } }, HELP);
  const [accessKeyId, target] = expectPositionals(parsed.positionals, ['ACCESS_KEY_ID', 's3://BUCKET/KEY'], HELP) as [string, string];
  const method = stringOption(parsed, 'method');
  const maxSize = stringOption(parsed, 'max-size');
  const isPost = method?.toUpperCase() === 'POST';
  if (maxSize !== undefined && !isPost) throw new UsageError('--max-size only applies to --method POST (browser form uploads).', HELP);
  return withStore(io, async (store, config) => {
    try {
      if (isPost) {
        const form = await issuePresignedPost(store.keys, config, { accessKeyId, target, maxSize, expiresIn: stringOption(parsed, 'expires-in') });
        io.stdout(`${JSON.stringify({ url: form.url, fields: form.fields, expiresAt: form.expiresAt.toISOString() }, null, 2)}\n`);
        return EXIT_OK;
      }
      const presigned = await issuePresignedUrl(store.keys, config, { accessKeyId, target, method, expiresIn: stringOption(parsed, 'expires-in') });
      io.stdout(`${presigned.url}\n`);
      return EXIT_OK;
    } catch (error) {
      // A key that does not exist is a failed command; anything else is the command line's fault.
      if (error instanceof PresignError) throw error.problem === 'invalid' ? new UsageError(error.message, HELP) : new CommandFailure(error.message);
      throw error;
    }
  });
}
