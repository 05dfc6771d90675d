/** `keygate buckets add|list|remove|sync|cors`. */
import { readFileSync } from 'node:fs';
import { CorsDocumentError, parseCorsDocument, type CorsRule } from '../buckets/cors.js';
import { bucketToJson, corsToJson } from '../buckets/json.js';
import { BucketValidationError } from '../buckets/validate.js';
import type { Config } from '../config.js';
import type { BucketRecord } from '../store/store.js';
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
    case 'cors':
      return bucketCors(rest, io);
    case undefined:
      io.stderr(BUCKETS_USAGE);
      return EXIT_USAGE;
    case '--help':
    case '-h':
    case 'help':
      io.stdout(BUCKETS_USAGE);
      return EXIT_OK;
    default:
      throw new UsageError(`Unknown command "buckets ${verb}"; use add, list, remove, sync or cors.`, HELP);
  }
}

function addBucket(args: string[], io: CliIo): Promise<number> {
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
  const [name] = expectPositionals(parsed.positionals, ['NAME'], HELP) as [string];
  return withStore(io, async (store, config) => {
    let bucket: BucketRecord;
    try {
      bucket = await store.buckets.add({
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

function listBuckets(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { json: { type: 'boolean' } }, HELP);
  expectPositionals(parsed.positionals, [], HELP);
  return withStore(io, async (store) => {
    const buckets = await store.buckets.list();
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

function removeBucket(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, {}, HELP);
  const [name] = expectPositionals(parsed.positionals, ['NAME'], HELP) as [string];
  return withStore(io, async (store) => {
    if (!(await store.buckets.remove(name))) {
      throw new CommandFailure(`Bucket ${name} is not registered; see the registered ones with: keygate buckets list`);
    }
    const scopedKeys = (await store.keys.list({ bucket: name })).length;
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

const CORS_HELP = 'keygate buckets cors --help';

function bucketCors(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { file: { type: 'string' }, clear: { type: 'boolean' }, json: { type: 'boolean' } }, CORS_HELP);
  const [name] = expectPositionals(parsed.positionals, ['NAME'], CORS_HELP) as [string];
  const file = stringOption(parsed, 'file');
  const clear = flag(parsed, 'clear');
  if (file !== undefined && clear) throw new UsageError('Give either --file or --clear, not both.', CORS_HELP);
  const rules = file === undefined ? undefined : readCorsFile(file);
  return withStore(io, async (store) => {
    const notRegistered = () => new CommandFailure(`Bucket ${name} is not registered; see the registered ones with: keygate buckets list`);
    if (clear) {
      if (!(await store.buckets.setCors(name, null))) throw notRegistered();
      io.stdout(`Removed the CORS rules of ${name}; browsers on other origins can no longer use it.\n`);
      return EXIT_OK;
    }
    if (rules !== undefined) {
      if (!(await store.buckets.setCors(name, rules))) throw notRegistered();
      io.stdout(`Stored ${rules.length} CORS rule${rules.length === 1 ? '' : 's'} for ${name}.\n`);
      return EXIT_OK;
    }
    const bucket = await store.buckets.get(name);
    if (!bucket) throw notRegistered();
    if (flag(parsed, 'json')) io.stdout(`${JSON.stringify(corsToJson(name, bucket.cors), null, 2)}\n`);
    else if (!bucket.cors || bucket.cors.length === 0) io.stdout(`${name} has no CORS rules. Set them with: keygate buckets cors ${name} --file rules.json\n`);
    else io.stdout(formatTable(['ORIGINS', 'METHODS', 'HEADERS', 'EXPOSE', 'MAX AGE'], bucket.cors.map(corsRow)));
    return EXIT_OK;
  });
}

function readCorsFile(file: string): CorsRule[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CommandFailure(
      `Cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give the path of a JSON file of CORS rules.`,
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON (${(error as Error).message}).`, CORS_HELP);
  }
  try {
    return parseCorsDocument(document);
  } catch (error) {
    if (error instanceof CorsDocumentError) throw new UsageError(`${file}: ${error.message}`, CORS_HELP);
    throw error;
  }
}

function corsRow(rule: CorsRule): string[] {
  return [
    rule.allowedOrigins.join(' '),
    rule.allowedMethods.join(','),
    (rule.allowedHeaders ?? []).join(' ') || '-',
    (rule.exposeHeaders ?? []).join(' ') || '-',
    rule.maxAgeSeconds === undefined ? '-' : `${rule.maxAgeSeconds}s`,
  ];
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
    .replace(
      /^A region is only used together with an endpoint; add the endpoint URL, or use a datacenter instead\./,
      '--region is only used with --endpoint; add --endpoint URL, or use --datacenter instead.',
    );
}
