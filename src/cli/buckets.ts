/** `keygate buckets add|list|remove|sync`. */
import { bucketToJson } from '../buckets/json.js';
import { BucketValidationError } from '../buckets/validate.js';
import type { Config } from '../config.js';
import type { BucketRecord } from '../store/buckets.js';
import { expectPositionals, flag, parseCommand, stringOption } from './args.js';
import { runBucketsSync } from './buckets-sync.js';
import { CommandFailure, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { formatDate, formatTable } from './format.js';
import { BUCKETS_USAGE } from './help.js';
import type { CliIo } from './io.js';
import { withStore } from './store.js';

const HELP = 'keygate buckets --help';

export async function runBuckets(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'add':
      return addBucket(rest, io);
    case 'list':
      return listBuckets(rest, io);
    case 'remove':
      return removeBucket(rest, io);
    case 'sync':
      return runBucketsSync(rest, io);
    case undefined:
      io.stderr(BUCKETS_USAGE);
      return EXIT_USAGE;
    case '--help':
    case '-h':
    case 'help':
      return printHelp(io);
    default:
      throw new UsageError(`Unknown command "buckets ${verb}"; use add, list, remove or sync.`, HELP);
  }
}

function addBucket(args: string[], io: CliIo): number {
  const parsed = parseCommand(
    args,
    {
      datacenter: { type: 'string' },
      'upstream-bucket': { type: 'string' },
      endpoint: { type: 'string' },
      region: { type: 'string' },
    },
    HELP,
  );
  if (parsed.help) return printHelp(io);
  const [name] = expectPositionals(parsed.positionals, ['NAME'], HELP) as [string];
  return withStore(io, (store, config) => {
    let bucket: BucketRecord;
    try {
      bucket = store.buckets.add({
        name,
        datacenter: stringOption(parsed, 'datacenter') ?? null,
        upstreamBucket: stringOption(parsed, 'upstream-bucket') ?? null,
        endpoint: stringOption(parsed, 'endpoint') ?? null,
        region: stringOption(parsed, 'region') ?? null,
      });
    } catch (error) {
      if (error instanceof BucketValidationError) {
        if (error.problem === 'conflict') throw new CommandFailure(error.message);
        throw new UsageError(cliWording(error.message), HELP);
      }
      throw error;
    }
    io.stdout(`Registered bucket ${bucket.name} -> ${upstreamOf(bucket)}, upstream bucket ${bucket.upstreamBucket}.\n`);
    const missing = missingCredentials(bucket, config);
    if (missing) io.stderr(`Note: ${missing}\n`);
    return EXIT_OK;
  });
}

function listBuckets(args: string[], io: CliIo): number {
  const parsed = parseCommand(args, { json: { type: 'boolean' } }, HELP);
  if (parsed.help) return printHelp(io);
  expectPositionals(parsed.positionals, [], HELP);
  return withStore(io, (store) => {
    const buckets = store.buckets.list();
    if (flag(parsed, 'json')) {
      io.stdout(`${JSON.stringify(buckets.map(bucketToJson), null, 2)}\n`);
    } else if (buckets.length === 0) {
      io.stdout('No buckets registered. Add one with: keygate buckets add NAME --datacenter DC\n');
    } else {
      io.stdout(
        formatTable(
          ['NAME', 'UPSTREAM', 'UPSTREAM BUCKET', 'CREATED'],
          buckets.map((b) => [b.name, upstreamOf(b), b.upstreamBucket, formatDate(b.createdAt)]),
        ),
      );
    }
    return EXIT_OK;
  });
}

function removeBucket(args: string[], io: CliIo): number {
  const parsed = parseCommand(args, {}, HELP);
  if (parsed.help) return printHelp(io);
  const [name] = expectPositionals(parsed.positionals, ['NAME'], HELP) as [string];
  return withStore(io, (store) => {
    if (!store.buckets.remove(name)) {
      throw new CommandFailure(`Bucket ${name} is not registered; see the registered ones with: keygate buckets list`);
    }
    const scopedKeys = store.keys.list({ bucket: name }).length;
    io.stdout(`Removed bucket ${name} from the registry; objects upstream are untouched.\n`);
    if (scopedKeys > 0) {
      io.stdout(
        `${scopedKeys} key${scopedKeys === 1 ? '' : 's'} scoped to ${name} remain${scopedKeys === 1 ? 's' : ''}; ` +
          `list them with \`keygate keys list --bucket ${name}\` and delete them if they should stop working.\n`,
      );
    }
    return EXIT_OK;
  });
}

function upstreamOf(bucket: BucketRecord): string {
  if (bucket.datacenter) return `RunPod ${bucket.datacenter}`;
  if (bucket.endpoint) return `${bucket.endpoint} (${bucket.region ?? 'us-east-1'})`;
  return 'default upstream';
}

/** What the server will lack to reach this bucket, if anything (the registry entry is still valid). */
function missingCredentials(bucket: BucketRecord, config: Config): string | null {
  if (bucket.datacenter && config.runpodCredentials === null) {
    return 'RUNPOD_S3_ACCESS_KEY and RUNPOD_S3_SECRET_KEY are not set; the server needs them to reach RunPod datacenters.';
  }
  if (!bucket.datacenter && !bucket.endpoint && config.defaultUpstream === null) {
    return 'KEYGATE_UPSTREAM_ENDPOINT is not set, so this bucket has no upstream yet; set it or re-add the bucket with --datacenter.';
  }
  if (bucket.endpoint && config.defaultUpstream === null && config.runpodCredentials === null) {
    return 'no upstream credentials are set; set KEYGATE_UPSTREAM_ACCESS_KEY_ID and KEYGATE_UPSTREAM_SECRET_ACCESS_KEY.';
  }
  return null;
}

/** The shared validation messages speak of fields; on the command line, name the flags. */
function cliWording(message: string): string {
  return message
    .replace(/^Give either a RunPod datacenter or an endpoint with a region, not both/, 'Give either --datacenter or --endpoint with --region, not both')
    .replace(/^An endpoint needs its signing region too; add a region, e\.g\. "us-east-1"\./, '--endpoint needs --region too; add e.g. --region us-east-1.')
    .replace(/^A region is only used together with an endpoint; add the endpoint URL, or use a datacenter instead\./, '--region is only used with --endpoint; add --endpoint URL, or use --datacenter instead.');
}

function printHelp(io: CliIo): number {
  io.stdout(BUCKETS_USAGE);
  return EXIT_OK;
}
