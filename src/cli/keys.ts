/** `keygate keys create|list|show|delete`. */
import type { Config } from '../config.js';
import { isAccessKeyId } from '../crypto/keygen.js';
import { createdKeyToJson, keyToJson } from '../keys/json.js';
import { isDisabled, isExpired, type AccessKey, type AccessKeyWithSecret } from '../keys/model.js';
import { KeyValidationError } from '../keys/validate.js';
import { expectPositionals, flag, parseCommand, stringOption, stringOptions } from './args.js';
import { CommandFailure, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { formatDate, formatTable } from './format.js';
import { boto3Snippet, environmentBlock } from '../keys/snippets.js';
import { KEYS_USAGE } from './help.js';
import type { CliIo } from './io.js';
import { withStore } from './store.js';

export async function runKeys(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'create':
      return createKey(rest, io);
    case 'list':
      return listKeys(rest, io);
    case 'show':
      return showKey(rest, io);
    case 'delete':
      return deleteKey(rest, io);
    case 'disable':
      return setKeyDisabled(rest, io, true);
    case 'enable':
      return setKeyDisabled(rest, io, false);
    case undefined:
      io.stderr(KEYS_USAGE);
      return EXIT_USAGE;
    case '--help':
    case '-h':
    case 'help':
      io.stdout(KEYS_USAGE);
      return EXIT_OK;
    default:
      throw new UsageError(`Unknown command "keys ${verb}"; use create, list, show, disable, enable or delete.`, 'keygate keys --help');
  }
}

function createKey(args: string[], io: CliIo): Promise<number> {
  const help = 'keygate keys --help';
  const parsed = parseCommand(
    args,
    {
      name: { type: 'string' },
      bucket: { type: 'string' },
      perm: { type: 'string', multiple: true },
      preset: { type: 'string' },
      'expires-in': { type: 'string' },
      'rate-limit': { type: 'string' },
      'rate-burst': { type: 'string' },
      'allow-ip': { type: 'string', multiple: true },
      prefix: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  );
  expectPositionals(parsed.positionals, [], help);
  const name = stringOption(parsed, 'name');
  if (name === undefined) throw new UsageError('Missing --name; name the key after who or what uses it, e.g. --name ci-uploader.', help);

  const perm = stringOptions(parsed, 'perm');
  return withStore(io, async (store, config) => {
    let key: AccessKeyWithSecret;
    try {
      key = await store.keys.create({
        name,
        bucket: stringOption(parsed, 'bucket') ?? null,
        // `--perm read,write` and `--perm read --perm write` both work.
        permissions: perm?.flatMap((p) => p.split(',')).filter((p) => p.trim() !== ''),
        preset: stringOption(parsed, 'preset'),
        expiresIn: stringOption(parsed, 'expires-in') ?? null,
        rateLimit: stringOption(parsed, 'rate-limit') ?? null,
        rateBurst: stringOption(parsed, 'rate-burst') ?? null,
        // `--allow-ip 10.0.0.0/8,2001:db8::/32` and repeated --allow-ip both work.
        allowedIps: stringOptions(parsed, 'allow-ip') ?? null,
        prefix: stringOption(parsed, 'prefix') ?? null,
      });
    } catch (error) {
      if (error instanceof KeyValidationError) throw new UsageError(cliWording(error.message), help);
      throw error;
    }
    if (flag(parsed, 'json')) {
      io.stdout(`${JSON.stringify(createdKeyToJson(key, config))}\n`);
    } else {
      io.stdout(describeCreatedKey(key, config));
    }
    await warnIfUnroutable(key.bucket, (name) => store.buckets.get(name), config, io);
    return EXIT_OK;
  });
}

function listKeys(args: string[], io: CliIo): Promise<number> {
  const help = 'keygate keys --help';
  const parsed = parseCommand(args, { bucket: { type: 'string' }, json: { type: 'boolean' } }, help);
  expectPositionals(parsed.positionals, [], help);
  const bucket = stringOption(parsed, 'bucket');
  return withStore(io, async (store, config) => {
    const keys = await store.keys.list(bucket === undefined ? {} : { bucket });
    if (flag(parsed, 'json')) {
      io.stdout(
        `${JSON.stringify(
          keys.map((key) => keyToJson(key, config)),
          null,
          2,
        )}\n`,
      );
    } else if (keys.length === 0) {
      io.stdout(
        bucket === undefined
          ? 'No access keys yet. Create one with: keygate keys create --name NAME --preset read-only\n'
          : `No access keys for bucket ${bucket}. Create one with: keygate keys create --name NAME --bucket ${bucket} --preset read-only\n`,
      );
    } else {
      const now = new Date();
      io.stdout(
        formatTable(
          ['ACCESS KEY ID', 'NAME', 'STATE', 'SCOPE', 'PERMISSIONS', 'EXPIRES', 'LAST USED', 'CREATED'],
          keys.map((key) => [
            key.accessKeyId,
            key.name,
            stateOf(key, now),
            scopeOf(key),
            key.permissions.join(','),
            expiryOf(key, now),
            formatDate(key.lastUsedAt, 'never'),
            formatDate(key.createdAt),
          ]),
        ),
      );
    }
    return EXIT_OK;
  });
}

function showKey(args: string[], io: CliIo): Promise<number> {
  const help = 'keygate keys --help';
  const parsed = parseCommand(args, { json: { type: 'boolean' } }, help);
  const [id] = expectPositionals(parsed.positionals, ['ACCESS_KEY_ID'], help) as [string];
  assertAccessKeyId(id, help);
  return withStore(io, async (store, config) => {
    const key = await store.keys.get(id);
    if (!key) throw new CommandFailure(`No access key ${id}; see the existing ones with: keygate keys list`);
    if (flag(parsed, 'json')) {
      io.stdout(`${JSON.stringify(keyToJson(key, config), null, 2)}\n`);
    } else {
      io.stdout(
        formatTable(
          ['FIELD', 'VALUE'],
          [
            ['Access key ID', key.accessKeyId],
            ['Name', key.name],
            ['State', stateOf(key, new Date())],
            ['Scope', scopeOf(key)],
            ['Prefix', key.prefix === null ? 'any object key' : key.prefix],
            ['Permissions', key.permissions.join(',')],
            ['Expires', expiryOf(key, new Date())],
            ['Rate limit', rateLimitOf(key)],
            ['Allowed from', key.allowedIps === null ? 'anywhere' : key.allowedIps.join(', ')],
            ['Last used', formatDate(key.lastUsedAt, 'never')],
            ['Created', formatDate(key.createdAt)],
            ['Endpoint', config.publicUrl],
            ['Region', config.region],
          ],
        ).replace(/^FIELD.*\n/, ''),
      );
    }
    return EXIT_OK;
  });
}

/** `keys disable ID` / `keys enable ID`: the key is refused (or accepted again) from the server's next request on. */
function setKeyDisabled(args: string[], io: CliIo, disabled: boolean): Promise<number> {
  const help = 'keygate keys --help';
  const parsed = parseCommand(args, {}, help);
  const [id] = expectPositionals(parsed.positionals, ['ACCESS_KEY_ID'], help) as [string];
  assertAccessKeyId(id, help);
  return withStore(io, async (store) => {
    const key = await store.keys.setDisabled(id, disabled);
    if (!key) throw new CommandFailure(`No access key ${id}; see the existing ones with: keygate keys list`);
    io.stdout(
      disabled
        ? `Disabled access key ${id} (${key.name}). Requests signed with it are refused until: keygate keys enable ${id}\n`
        : `Enabled access key ${id} (${key.name}). Requests signed with it are accepted again.\n`,
    );
    return EXIT_OK;
  });
}

function deleteKey(args: string[], io: CliIo): Promise<number> {
  const help = 'keygate keys --help';
  const parsed = parseCommand(args, {}, help);
  const [id] = expectPositionals(parsed.positionals, ['ACCESS_KEY_ID'], help) as [string];
  assertAccessKeyId(id, help);
  return withStore(io, async (store) => {
    const key = await store.keys.get(id);
    if (!key || !(await store.keys.delete(id))) throw new CommandFailure(`No access key ${id}; see the existing ones with: keygate keys list`);
    io.stdout(`Deleted access key ${id} (${key.name}). Requests signed with it are refused from now on.\n`);
    return EXIT_OK;
  });
}

function describeCreatedKey(key: AccessKeyWithSecret, config: Config): string {
  const scope = key.bucket === null ? `workspace-wide, ${key.permissions.join(',')}` : `bucket ${key.bucket}, ${key.permissions.join(',')}`;
  const lines = [
    `Created access key "${key.name}" (${scope}${key.expiresAt ? `, expires ${formatDate(key.expiresAt)}` : ''}${key.rateLimit ? `, at most ${key.rateLimit.requestsPerSecond} requests/s` : ''}).`,
    '',
    `  Access key ID      ${key.accessKeyId}`,
    `  Secret access key  ${key.secretAccessKey}`,
    `  Endpoint           ${config.publicUrl}`,
    `  Region             ${config.region}`,
    '',
    'The secret access key is shown only this once and cannot be retrieved later. Store it now.',
    '',
    '# Environment for aws-cli (>= 2.13) and the AWS SDKs (boto3 >= 1.31); older aws-cli: add --endpoint-url',
    ...environmentBlock(key, config),
    '',
    '# boto3',
    ...boto3Snippet(key, config),
    '',
  ];
  return lines.join('\n');
}

/** A heads-up (stderr) when the server would not know where a bucket key's bucket lives. */
async function warnIfUnroutable(bucket: string | null, getBucket: (name: string) => Promise<unknown>, config: Config, io: CliIo): Promise<void> {
  if (bucket === null || (await getBucket(bucket)) !== null) return;
  if (config.defaultUpstream !== null || config.runpodApiKey !== null) return;
  io.stderr(
    `Note: bucket ${bucket} is not registered and neither KEYGATE_UPSTREAM_ENDPOINT nor RUNPOD_API_KEY is set; ` +
      `register it so the gateway can route it: keygate buckets add ${bucket} --datacenter DC\n`,
  );
}

/** The shared validation messages name API concepts; on the command line, name the flags. */
function cliWording(message: string): string {
  return message
    .replace(/\bpreset (read-only) or (read-write)\b/g, '--preset $1 or --preset $2')
    .replace(/^Say what the key may do: permissions/, 'Say what the key may do: --perm')
    .replace(/or a preset \(/, 'or --preset (')
    .replace(/^Give either permissions or a preset, not both\./, 'Give either --perm or --preset, not both.');
}

function assertAccessKeyId(id: string, help: string): void {
  if (!isAccessKeyId(id)) throw new UsageError(`"${id}" is not an access key id; they look like rs_ak_live_<40 hex digits>.`, help);
}

function scopeOf(key: AccessKey): string {
  const scope = key.bucket === null ? 'workspace' : `bucket:${key.bucket}`;
  return key.prefix === null ? scope : `${scope}/${key.prefix}*`;
}

function rateLimitOf(key: AccessKey): string {
  return key.rateLimit === null ? "the gateway's (KEYGATE_RATE_LIMIT)" : `${key.rateLimit.requestsPerSecond}/s, burst ${key.rateLimit.burst}`;
}

function stateOf(key: AccessKey, now: Date): string {
  if (isDisabled(key)) return `disabled since ${formatDate(key.disabledAt)}`;
  return isExpired(key, now) ? 'expired' : 'enabled';
}

function expiryOf(key: AccessKey, now: Date): string {
  if (key.expiresAt === null) return 'never';
  return isExpired(key, now) ? `${formatDate(key.expiresAt)} (expired)` : formatDate(key.expiresAt);
}
