/**
 * The request headers an operation may send upstream, as named groups the operations table picks
 * from. Nothing outside an operation's groups ever reaches the upstream: not the client's signature,
 * framing or connection headers (the gateway sets its own), not headers that compare against the
 * operator's account (x-amz-expected-bucket-owner), and not a header of another operation (a copy
 * source on a PutObject, a POST form field naming one).
 *
 * Some headers carry a power of their own (object lock, ACLs, governance bypass, KMS keys): their
 * group names the permissions a key needs to send them, checked by authorize() like the
 * operation's own permission, and the upstream capability they need.
 */
import type { Permission } from '../keys/model.js';
import type { Capability } from '../upstream/target.js';

export interface HeaderGroup {
  /** For messages: what sending these headers does. */
  readonly purpose: string;
  /** Lower-case names; a name ending in `*` is a prefix. */
  readonly names: readonly string[];
  /** Permissions a request carrying one of these needs besides the operation's own. */
  readonly needs?: readonly Permission[];
  /** The upstream capability they need (NotImplemented without it). */
  readonly capability?: Capability;
  /** Values that mean the default and grant nothing: dropped instead of forwarded or checked. */
  readonly dropWhen?: (name: string, value: string) => boolean;
  /** Values that grant nothing beyond the operation's permission: forwarded without the group's requirements. */
  readonly freeWhen?: (name: string, value: string) => boolean;
}

function group(purpose: string, names: readonly string[], options: Omit<HeaderGroup, 'purpose' | 'names'> = {}): HeaderGroup {
  return { purpose, names, ...options };
}

/** ACLs that keep an object or bucket private: S3's default, so sending them changes nothing. */
const PRIVATE_ACLS = new Set(['private', 'bucket-owner-full-control']);

export const HEADERS = {
  /** What a stored object carries: content headers, user metadata, storage class, tags. */
  objectDescription: group('object description', [
    'content-type',
    'cache-control',
    'content-disposition',
    'content-encoding',
    'content-language',
    'expires',
    'x-amz-meta-*',
    'x-amz-storage-class',
    'x-amz-website-redirect-location',
  ]),
  objectTags: group('object tags', ['x-amz-tagging'], { capability: 'tagging' }),
  /** Checksums of the request body (verified by the gateway, and by the upstream again). */
  bodyChecksums: group('body checksums', [
    'content-md5',
    'x-amz-checksum-crc32',
    'x-amz-checksum-crc32c',
    'x-amz-checksum-crc64nvme',
    'x-amz-checksum-sha1',
    'x-amz-checksum-sha256',
    'x-amz-sdk-checksum-algorithm',
  ]),
  /** The checksum an upload's parts will carry (CreateMultipartUpload, CompleteMultipartUpload). */
  checksumSetup: group('checksum setup', ['x-amz-checksum-algorithm', 'x-amz-checksum-type']),
  /** The checksums of a whole multipart object, given at completion. */
  objectChecksums: group('object checksums', [
    'x-amz-checksum-crc32',
    'x-amz-checksum-crc32c',
    'x-amz-checksum-crc64nvme',
    'x-amz-checksum-sha1',
    'x-amz-checksum-sha256',
    'x-amz-checksum-type',
    'x-amz-mp-object-size',
  ]),
  readConditions: group('read conditions', ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']),
  writeConditions: group('write conditions', ['if-match', 'if-none-match']),
  /** A delete that happens only if the object is still the one the client saw (DeleteObjects entries carry the same). */
  deleteConditions: group('delete conditions', ['if-match', 'x-amz-if-match-last-modified-time', 'x-amz-if-match-size']),
  range: group('byte range', ['range']),
  checksumMode: group('checksum mode', ['x-amz-checksum-mode']),
  /** Server-side encryption with a key the client holds (sent with every read and write of the object). */
  customerKey: group('customer-provided encryption key', [
    'x-amz-server-side-encryption-customer-algorithm',
    'x-amz-server-side-encryption-customer-key',
    'x-amz-server-side-encryption-customer-key-md5',
  ]),
  copySourceCustomerKey: group('copy source customer-provided key', [
    'x-amz-copy-source-server-side-encryption-customer-algorithm',
    'x-amz-copy-source-server-side-encryption-customer-key',
    'x-amz-copy-source-server-side-encryption-customer-key-md5',
  ]),
  /**
   * Server-side encryption with the storage's own keys: AES256 needs nothing more; a KMS key is
   * the operator's to use (and can make an object unreadable to everyone else), so `admin`.
   */
  serverSideEncryption: group(
    'encryption with a KMS key',
    [
      'x-amz-server-side-encryption',
      'x-amz-server-side-encryption-aws-kms-key-id',
      'x-amz-server-side-encryption-context',
      'x-amz-server-side-encryption-bucket-key-enabled',
    ],
    { needs: ['admin'], freeWhen: (name, value) => name === 'x-amz-server-side-encryption' && value.trim().toUpperCase() === 'AES256' },
  ),
  copyConditions: group('copy source conditions', [
    'x-amz-copy-source-if-match',
    'x-amz-copy-source-if-none-match',
    'x-amz-copy-source-if-modified-since',
    'x-amz-copy-source-if-unmodified-since',
  ]),
  copyDirectives: group('copy directives', ['x-amz-metadata-directive', 'x-amz-tagging-directive']),
  copySourceRange: group('copy source range', ['x-amz-copy-source-range']),
  objectAttributes: group('object attributes', ['x-amz-object-attributes', 'x-amz-max-parts', 'x-amz-part-number-marker']),
  /** Retention and legal hold set with an upload: can make an object undeletable, so `admin`. */
  objectLock: group('object lock', ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold'], {
    needs: ['admin'],
    capability: 'objectLock',
  }),
  /** Deleting or shortening governance-mode retention: both `admin` and `delete`. */
  governanceBypass: group('governance-mode retention bypass', ['x-amz-bypass-governance-retention'], {
    needs: ['admin', 'delete'],
    capability: 'objectLock',
    dropWhen: (_name, value) => value.trim().toLowerCase() !== 'true',
  }),
  /** ACL grants: can open an object or bucket to anyone, so `admin` (a private ACL is dropped). */
  acl: group('ACL', ['x-amz-acl', 'x-amz-grant-full-control', 'x-amz-grant-read', 'x-amz-grant-read-acp', 'x-amz-grant-write', 'x-amz-grant-write-acp'], {
    needs: ['admin'],
    capability: 'acl',
    dropWhen: (name, value) => name === 'x-amz-acl' && PRIVATE_ACLS.has(value.trim().toLowerCase()),
  }),
  bucketCreation: group('bucket creation settings', ['x-amz-bucket-object-lock-enabled', 'x-amz-object-ownership']),
} as const satisfies Record<string, HeaderGroup>;

/** A header a request sent that needs more than the operation's own permission. */
export interface HeaderRequirement {
  header: string;
  purpose: string;
  permissions: readonly Permission[];
  capability: Capability | undefined;
}

export interface ForwardedHeaders {
  /** What goes upstream, lower-case names, repeated headers joined with ','. */
  headers: Record<string, string>;
  /** Headers sent that need permissions or capabilities beyond the operation's. */
  requirements: HeaderRequirement[];
}

/** The client's headers an operation with these groups forwards; the first group naming a header decides. */
export function forwardedHeaders(groups: readonly HeaderGroup[], client: Readonly<Record<string, string | readonly string[] | undefined>>): ForwardedHeaders {
  const headers: Record<string, string> = {};
  const requirements: HeaderRequirement[] = [];
  for (const rawName in client) {
    const rawValue = client[rawName];
    if (rawValue === undefined) continue;
    const name = rawName.toLowerCase();
    const owner = ownerOf(groups, name);
    if (owner === null) continue;
    let value = typeof rawValue === 'string' ? rawValue : rawValue.join(',');
    if (name === 'content-encoding') {
      value = withoutAwsChunked(value);
      if (value === '') continue;
    }
    if (owner.dropWhen?.(name, value)) continue;
    if ((owner.needs !== undefined || owner.capability !== undefined) && !owner.freeWhen?.(name, value)) {
      requirements.push({ header: name, purpose: owner.purpose, permissions: owner.needs ?? [], capability: owner.capability });
    }
    headers[name] = value;
  }
  return { headers, requirements };
}

/**
 * Per table entry's groups: the owner already found for each header name. Names are the client's,
 * so what is remembered is bounded in count and in length (a header name may be kilobytes long):
 * at most MAX_REMEMBERED_NAMES names of at most MAX_REMEMBERED_NAME_LENGTH characters per groups
 * array, about 2 MB at most over the whole operations table. Longer or further names are decided anew.
 */
const ownersByGroups = new WeakMap<readonly HeaderGroup[], Map<string, HeaderGroup | null>>();
const MAX_REMEMBERED_NAMES = 512;
const MAX_REMEMBERED_NAME_LENGTH = 64;

/** The first group naming `name` (exactly or by a `prefix*` pattern), or null. */
function ownerOf(groups: readonly HeaderGroup[], name: string): HeaderGroup | null {
  let owners = ownersByGroups.get(groups);
  if (owners === undefined) {
    owners = new Map();
    ownersByGroups.set(groups, owners);
  }
  let owner = owners.get(name);
  if (owner === undefined) {
    owner = groups.find((candidate) => candidate.names.some((pattern) => matches(pattern, name))) ?? null;
    if (name.length <= MAX_REMEMBERED_NAME_LENGTH && owners.size < MAX_REMEMBERED_NAMES) owners.set(name, owner);
  }
  return owner;
}

/** How many header names are remembered for these groups, and the longest (for tests of the bounds). */
export function rememberedHeaderNames(groups: readonly HeaderGroup[]): { count: number; longest: number } {
  const names = [...(ownersByGroups.get(groups)?.keys() ?? [])];
  return { count: names.length, longest: Math.max(0, ...names.map((name) => name.length)) };
}

function matches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) && name.length > pattern.length - 1 : pattern === name;
}

/**
 * `aws-chunked,gzip` -> `gzip`: aws-chunked describes the client's framing, which the gateway
 * removed. A value without the token is left exactly as sent (`deflate, gzip` stays as is).
 */
export function withoutAwsChunked(contentEncoding: string): string {
  const tokens = contentEncoding.split(',');
  if (!tokens.some((token) => token.trim().toLowerCase() === 'aws-chunked')) return contentEncoding;
  return tokens
    .map((token) => token.trim())
    .filter((token) => token !== '' && token.toLowerCase() !== 'aws-chunked')
    .join(',');
}
