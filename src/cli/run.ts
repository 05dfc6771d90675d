/**
 * The CLI: dispatches `keygate <group> <verb>` and maps every outcome to an exit code and a message
 * that says what to do next (see errors.ts). Never prints stack traces.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';
import { SealError } from '../crypto/seal.js';
import { isStoreUnavailable, storeErrorMessage, StoreUnavailableError } from '../store/store.js';
import { DataDirError } from '../data-dir.js';
import { ListenError } from '../server.js';
import { runBuckets } from './buckets.js';
import { CommandFailure, EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { HelpRequested } from './args.js';
import { MAIN_USAGE, USAGE_BY_HELP_COMMAND } from './help.js';
import { processIo, type CliIo } from './io.js';
import { runKeys } from './keys.js';
import { runPresign } from './presign.js';
import { runServe } from './serve.js';
import { runStore } from './store-migrate.js';

/** The package version; package.json sits two levels above both src/cli/ and dist/cli/. */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    return report(error, io);
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest, io);
    case 'keys':
      return runKeys(rest, io);
    case 'buckets':
      return runBuckets(rest, io);
    case 'presign':
      return runPresign(rest, io);
    case 'store':
      return runStore(rest, io);
    case 'help':
    case '--help':
    case '-h':
      io.stdout(MAIN_USAGE);
      return EXIT_OK;
    case '--version':
    case '-v':
      io.stdout(`keygate ${packageVersion()}\n`);
      return EXIT_OK;
    case undefined:
      io.stderr(MAIN_USAGE);
      return EXIT_USAGE;
    default:
      throw new UsageError(`Unknown command "${command}"; use serve, keys, buckets, presign or store.`);
  }
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof HelpRequested) {
    io.stdout(USAGE_BY_HELP_COMMAND[error.helpCommand] ?? MAIN_USAGE);
    return EXIT_OK;
  }
  if (error instanceof UsageError) {
    io.stderr(`keygate: ${error.message}\nRun \`${error.helpCommand}\` for usage.\n`);
    return EXIT_USAGE;
  }
  if (error instanceof ConfigError) {
    io.stderr(`keygate: configuration error: ${error.message}\n`);
    return EXIT_CONFIG;
  }
  if (
    error instanceof CommandFailure ||
    error instanceof DataDirError ||
    error instanceof ListenError ||
    error instanceof SealError ||
    error instanceof StoreUnavailableError
  ) {
    io.stderr(`keygate: ${error.message}\n`);
    return EXIT_FAILURE;
  }
  if (isStoreUnavailable(error)) {
    io.stderr(
      `keygate: the key store cannot be reached: ${error instanceof Error ? error.message : String(error)}. Check KEYGATE_DATABASE_URL and that the server is up.\n`,
    );
    return EXIT_FAILURE;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    io.stderr(
      `keygate: database error (${code}): ${(error as Error).message}. ` +
        'Check that KEYGATE_DATA_DIR is writable and the database is not damaged (restore it from a backup if it is).\n',
    );
    return EXIT_FAILURE;
  }
  io.stderr(`keygate: unexpected error: ${storeErrorMessage(error)}\n`);
  return EXIT_FAILURE;
}
