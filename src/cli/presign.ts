/** `keygate presign ACCESS_KEY_ID s3://BUCKET/KEY [--method GET|PUT|HEAD|DELETE] [--expires-in 600]`: prints the URL. */
import { PresignError, issuePresignedUrl } from '../presign.js';
import { expectPositionals, parseCommand, stringOption } from './args.js';
import { CommandFailure, EXIT_OK } from './errors.js';
import type { CliIo } from './io.js';
import { withStore } from './store.js';

const HELP = 'keygate presign --help';
const USAGE =
  'Usage: keygate presign ACCESS_KEY_ID s3://BUCKET/KEY [--method GET|PUT|HEAD|DELETE] [--expires-in 600]\n' +
  'Prints a presigned URL made with the key\'s secret (default 10 minutes, at most 7 days).\n';

export async function runPresign(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { method: { type: 'string' }, 'expires-in': { type: 'string' } }, HELP);
  if (parsed.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  const [accessKeyId, target] = expectPositionals(parsed.positionals, ['ACCESS_KEY_ID', 's3://BUCKET/KEY'], HELP) as [string, string];
  return withStore(io, (store, config) => {
    try {
      const presigned = issuePresignedUrl(store.keys, config, {
        accessKeyId,
        target,
        method: stringOption(parsed, 'method'),
        expiresIn: stringOption(parsed, 'expires-in'),
      });
      io.stdout(`${presigned.url}\n`);
      return EXIT_OK;
    } catch (error) {
      if (error instanceof PresignError) throw new CommandFailure(error.message);
      throw error;
    }
  });
}
