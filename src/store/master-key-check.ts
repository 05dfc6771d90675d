/**
 * A value sealed under the master key when a store is first opened. Checking it at start makes a
 * wrong master key (a typo, a second instance with its own generated key) fail loudly there, instead
 * of every key failing its signature check later.
 */
import { ConfigError } from '../config.js';
import { SealError, sealSecret, unsealSecret } from '../crypto/seal.js';

/** The meta row that holds the check value, in both stores. */
export const MASTER_KEY_CHECK = 'master_key_check';
const MASTER_KEY_CHECK_AAD = 'keygate:master-key-check';

export function masterKeyCheckValue(masterKey: Buffer): string {
  return sealSecret(masterKey, MASTER_KEY_CHECK_AAD, 'keygate');
}

/** Throws a ConfigError naming KEYGATE_MASTER_KEY, the store and the fix when `masterKey` did not seal `check`. */
export function verifyMasterKeyCheck(masterKey: Buffer, check: string, where: { store: string; fix: string }): void {
  try {
    unsealSecret(masterKey, MASTER_KEY_CHECK_AAD, check);
  } catch (error) {
    if (!(error instanceof SealError)) throw error;
    throw new ConfigError('KEYGATE_MASTER_KEY', `does not match the key that sealed the secrets in ${where.store}; ${where.fix}.`);
  }
}
