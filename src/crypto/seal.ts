/**
 * Envelope sealing of access key secrets at rest. Secrets must stay recoverable (SigV4 needs the
 * plaintext to compute HMACs), so they are encrypted, not hashed: AES-256-GCM under the master key,
 * a fresh random 12-byte IV per secret, and the access key id bound in as additional authenticated
 * data so a sealed blob copied onto another row fails to open instead of granting that row's access.
 *
 * Format: `v1:<base64 iv>:<base64 ciphertext>:<base64 auth tag>`. The version prefix leaves room
 * for key rotation or a different cipher without guessing at stored data.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Separates this use of the master key from any other use that might bind the same id later. */
const AAD_CONTEXT = 'keygate/access-key-secret/v1:';

/** A sealed value could not be opened: wrong master key, tampered data, or a blob from another row. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

export function sealSecret(masterKey: Buffer, accessKeyId: string, secret: string): string {
  assertMasterKey(masterKey);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, masterKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(accessKeyId));
  const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return [VERSION, iv.toString('base64'), ciphertext.toString('base64'), cipher.getAuthTag().toString('base64')].join(':');
}

/** Opens a sealed secret; throws SealError (never a partial plaintext) when anything does not verify. */
export function unsealSecret(masterKey: Buffer, accessKeyId: string, sealed: string): string {
  assertMasterKey(masterKey);
  const parts = sealed.split(':');
  if (parts.length !== 4 || parts[0] !== VERSION) {
    throw new SealError(`Sealed secret of ${accessKeyId} is not in the ${VERSION} format.`);
  }
  const [, ivText, ciphertextText, tagText] = parts as [string, string, string, string];
  const iv = decodeBase64(ivText);
  const ciphertext = decodeBase64(ciphertextText);
  const tag = decodeBase64(tagText);
  if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || ciphertext === null) {
    throw new SealError(`Sealed secret of ${accessKeyId} is malformed.`);
  }
  try {
    const decipher = createDecipheriv(ALGORITHM, masterKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(accessKeyId));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new SealError(
      `Sealed secret of ${accessKeyId} does not verify: the master key differs from the one that sealed it, or the stored value was altered.`,
    );
  }
}

function aad(accessKeyId: string): Buffer {
  return Buffer.from(AAD_CONTEXT + accessKeyId, 'utf8');
}

/** Strict base64: Buffer.from silently skips invalid characters, which would hide tampering. */
function decodeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  return Buffer.from(text, 'base64');
}

function assertMasterKey(masterKey: Buffer): void {
  if (masterKey.length !== KEY_BYTES) throw new Error(`The master key must be ${KEY_BYTES} bytes, got ${masterKey.length}.`);
}
