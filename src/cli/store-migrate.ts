/** `keygate store migrate --to postgres://… [--dry-run]`: moves the SQLite store into a shared PostgreSQL store. */
import { loadConfig, parseDatabaseUrl } from '../config.js';
import type { TablePlan } from '../store/migrate.js';
import { expectPositionals, flag, parseCommand, stringOption } from './args.js';
import { CommandFailure, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { STORE_USAGE } from './help.js';
import type { CliIo } from './io.js';

const HELP = 'keygate store --help';

export async function runStore(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'migrate':
      return migrateStore(rest, io);
    case undefined:
      io.stderr(STORE_USAGE);
      return EXIT_USAGE;
    case '--help':
    case '-h':
    case 'help':
      io.stdout(STORE_USAGE);
      return EXIT_OK;
    default:
      throw new UsageError(`Unknown command "store ${verb}"; use migrate.`, HELP);
  }
}

async function migrateStore(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { to: { type: 'string' }, 'dry-run': { type: 'boolean' } }, HELP);
  expectPositionals(parsed.positionals, [], HELP);
  const to = stringOption(parsed, 'to');
  if (to === undefined) throw new UsageError('Missing --to; name the PostgreSQL store, e.g. --to postgres://keygate:<password>@db:5432/keygate.', HELP);
  let url: string;
  try {
    url = parseDatabaseUrl('--to', to);
  } catch (error) {
    throw new UsageError((error as Error).message, HELP);
  }
  const config = loadConfig(io.env);
  const dryRun = flag(parsed, 'dry-run');
  // Loaded only for this command: the PostgreSQL driver is not part of the everyday CLI.
  const { migrateToPostgres, MigrationFailed, MigrationSourceMissing } = await import('../store/migrate.js');
  let report;
  try {
    report = await migrateToPostgres(config, url, { dryRun });
  } catch (error) {
    if (error instanceof MigrationSourceMissing || error instanceof MigrationFailed) throw new CommandFailure(error.message);
    throw error;
  }
  io.stdout(`${dryRun ? 'Dry run: would copy' : 'Copied'} from SQLite ${report.from} to PostgreSQL ${report.to}:\n`);
  io.stdout(summary('access keys', report.keys, dryRun));
  io.stdout(summary('buckets', report.buckets, dryRun));
  const differ = [...report.keys.differ.map((id) => `access key ${id}`), ...report.buckets.differ.map((name) => `bucket ${name}`)];
  for (const item of differ) io.stderr(`keygate: ${item} is already in PostgreSQL with other contents; it was left as it is there.\n`);
  const deletedHere = [...report.keys.deletedHere.map((id) => `access key ${id}`), ...report.buckets.deletedHere.map((name) => `bucket ${name}`)];
  for (const item of deletedHere) {
    io.stderr(`keygate: ${item} was deleted from SQLite after it was copied, but is still in PostgreSQL; delete it there if it should stop working.\n`);
  }
  if (dryRun) io.stdout('Nothing was written. Run again without --dry-run to copy.\n');
  else io.stdout('Point every instance at the store with KEYGATE_DATABASE_URL and the same KEYGATE_MASTER_KEY as this data dir (docs/deployment.md).\n');
  if (differ.length + deletedHere.length > 0) {
    io.stderr('keygate: resolve the rows above (delete the one that is wrong, in either store) and run the migration again.\n');
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}

function summary(what: string, plan: TablePlan, dryRun: boolean): string {
  const extra = [
    plan.differ.length > 0 ? `, ${plan.differ.length} differ` : '',
    plan.deletedThere.length > 0 ? `, ${plan.deletedThere.length} deleted in PostgreSQL since copied (not copied again)` : '',
    plan.deletedHere.length > 0 ? `, ${plan.deletedHere.length} deleted in SQLite since copied (still in PostgreSQL)` : '',
  ].join('');
  return `  ${what}: ${plan.copy.length} ${dryRun ? 'to copy' : 'copied'}, ${plan.same.length} already there${extra}\n`;
}
