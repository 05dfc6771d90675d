/**
 * Access key material. Ids and secrets carry a recognizable prefix (`rs_ak_` / `rs_sk_`) and the
 * deployment's tag so leaked credentials are easy to spot by secret scanners and to attribute to an
 * installation. All randomness comes from the OS CSPRNG.
 */
import { randomBytes } from 'node:crypto';

/** 20 random bytes (160 bits) make ids unguessable and collisions practically impossible. */
const ACCESS_KEY_ID_RANDOM_BYTES = 20;
/** 32 random bytes (256 bits): the secret is an HMAC key, so it gets a full key's worth of entropy. */
const SECRET_RANDOM_BYTES = 32;

const TAG = '[a-z0-9]{1,16}';
const ACCESS_KEY_ID_PATTERN = new RegExp(`^rs_ak_${TAG}_[0-9a-f]{${ACCESS_KEY_ID_RANDOM_BYTES * 2}}$`);
const SECRET_PATTERN = new RegExp(`^rs_sk_${TAG}_[0-9a-f]{${SECRET_RANDOM_BYTES * 2}}$`);
const TAG_PATTERN = new RegExp(`^${TAG}$`);

export interface GeneratedKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

/** `rs_ak_<tag>_<40 hex>` */
export function generateAccessKeyId(tag: string): string {
  assertTag(tag);
  return `rs_ak_${tag}_${randomBytes(ACCESS_KEY_ID_RANDOM_BYTES).toString('hex')}`;
}

/** `rs_sk_<tag>_<64 hex>` */
export function generateSecretAccessKey(tag: string): string {
  assertTag(tag);
  return `rs_sk_${tag}_${randomBytes(SECRET_RANDOM_BYTES).toString('hex')}`;
}

export function generateKeyPair(tag: string): GeneratedKeyPair {
  return { accessKeyId: generateAccessKeyId(tag), secretAccessKey: generateSecretAccessKey(tag) };
}

/** True when `value` is shaped like an access key id of any tag (ids stay valid if the tag changes later). */
export function isAccessKeyId(value: string): boolean {
  return ACCESS_KEY_ID_PATTERN.test(value);
}

export function isSecretAccessKey(value: string): boolean {
  return SECRET_PATTERN.test(value);
}

function assertTag(tag: string): void {
  // config.ts validates KEYGATE_KEY_TAG; this guards direct callers from producing ids the validator rejects.
  if (!TAG_PATTERN.test(tag)) throw new Error(`Key tag "${tag}" must be 1-16 lowercase letters or digits.`);
}
