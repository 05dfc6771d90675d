/**
 * The master key that seals access key secrets: KEYGATE_MASTER_KEY when set, else
 * `<dataDir>/master.key` (64 hex characters, mode 0600), generated on first use. Keeping it outside
 * the database means a copied keygate.db alone reveals no secret.
 */
import { hkdfSync } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ConfigError, type Config } from '../config.js';
import { ensureDataDir, readIfExists, readOrCreateSecretFile } from '../data-dir.js';

export const MASTER_KEY_FILE = 'master.key';
const MASTER_KEY_BYTES = 32;

export function masterKeyPath(dataDir: string): string {
  return path.join(dataDir, MASTER_KEY_FILE);
}

export interface LoadMasterKeyOptions {
  /**
   * False once secrets have been sealed: generating a fresh key then would silently orphan every
   * stored secret, so a missing file must be reported instead.
   */
  allowGenerate?: boolean;
}

export function loadMasterKey(config: Pick<Config, 'masterKey' | 'dataDir'>, options: LoadMasterKeyOptions = {}): Buffer {
  if (config.masterKey) return config.masterKey;
  const file = masterKeyPath(config.dataDir);
  if (options.allowGenerate === false) {
    const contents = readIfExists(file);
    if (contents === null) {
      throw new ConfigError(
        'KEYGATE_MASTER_KEY',
        `is not set and ${file} is missing, but the database already holds sealed secrets; ` +
          'restore master.key from your backup (or set KEYGATE_MASTER_KEY to the key that sealed them).',
      );
    }
    return parseMasterKeyFile(file, contents);
  }
  ensureDataDir(config.dataDir);
  const { contents, created } = readOrCreateSecretFile(file, () => `${randomBytes(MASTER_KEY_BYTES).toString('hex')}\n`);
  if (created) {
    // stderr so `--json` output on stdout stays machine-readable. The key itself is never printed.
    process.stderr.write(`keygate: generated a new master key at ${file}; back it up, secrets cannot be recovered without it.\n`);
  }
  return parseMasterKeyFile(file, contents);
}

function parseMasterKeyFile(file: string, contents: string): Buffer {
  const hex = contents.trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) {
    throw new ConfigError('KEYGATE_MASTER_KEY', `is not set and ${file} does not hold a 32-byte key as 64 hex characters; restore the file from your backup.`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * A 32-byte key for another purpose than sealing secrets (HKDF-SHA256 of the master key, the
 * purpose as info): instances sharing a master key derive the same keys, and no derived key
 * reveals the master key or another purpose's key.
 */
export function deriveKey(masterKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `keygate:${purpose}`, 32));
}
