/**
 * The admin API's bearer token. KEYGATE_ADMIN_TOKEN when set; otherwise a random token is generated
 * on first `serve`, printed once, and only its SHA-256 is kept in `<dataDir>/admin-token.sha256`
 * (the token is a random 256-bit value, so a plain hash is enough to make the file useless to a
 * thief). Verification hashes both sides and compares in constant time, so neither the token's
 * length nor its prefix leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { ConfigError, type Config } from '../config.js';
import { ensureDataDir, readOrCreateSecretFile } from '../data-dir.js';

export const ADMIN_TOKEN_HASH_FILE = 'admin-token.sha256';

/** True when `presented` is the admin token. */
export type AdminTokenVerifier = (presented: string) => boolean;

export interface PrepareAdminTokenOptions {
  /** Where the freshly generated token is shown (once). Defaults to stdout. */
  announce?: (text: string) => void;
}

export function adminTokenHashPath(dataDir: string): string {
  return path.join(dataDir, ADMIN_TOKEN_HASH_FILE);
}

/** A verifier for a known token. */
export function verifierForToken(token: string): AdminTokenVerifier {
  return verifierForHash(sha256(token));
}

/** A verifier for a token known only by its SHA-256 digest. */
export function verifierForHash(expectedDigest: Buffer): AdminTokenVerifier {
  if (expectedDigest.length !== 32) throw new Error('An admin token digest must be 32 bytes (SHA-256).');
  const expected = Buffer.from(expectedDigest);
  return (presented) => timingSafeEqual(sha256(presented), expected);
}

/**
 * The verifier for this installation: from KEYGATE_ADMIN_TOKEN, else from the stored hash, else a
 * new token is generated, its hash stored (0600), and the token announced once.
 */
export function prepareAdminToken(config: Pick<Config, 'adminToken' | 'dataDir'>, options: PrepareAdminTokenOptions = {}): AdminTokenVerifier {
  if (config.adminToken !== null) return verifierForToken(config.adminToken);

  ensureDataDir(config.dataDir);
  const file = adminTokenHashPath(config.dataDir);
  // Drawn up front (cheap) so the announced token is certainly the one whose hash was written.
  const candidate = randomBytes(32).toString('base64url');
  const { contents, created } = readOrCreateSecretFile(file, () => `${sha256(candidate).toString('hex')}\n`);
  const hex = contents.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new ConfigError(
      'KEYGATE_ADMIN_TOKEN',
      `is not set and ${file} does not hold a SHA-256 hex digest; delete the file to generate a new token on the next start, or set KEYGATE_ADMIN_TOKEN.`,
    );
  }
  // Only the process whose file won announces: a token that lost a creation race would not work.
  if (created) {
    const announce = options.announce ?? ((text: string) => process.stdout.write(text));
    announce(
      [
        '',
        'Generated an admin API token. It is shown only this once; save it now (only its hash is stored):',
        '',
        `  ${candidate}`,
        '',
        'Use it as "Authorization: Bearer <token>". To replace it, delete',
        `${file} and restart, or set KEYGATE_ADMIN_TOKEN.`,
        '',
      ].join('\n') + '\n',
    );
  }
  return verifierForHash(Buffer.from(hex, 'hex'));
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
