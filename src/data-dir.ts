/**
 * The data directory holds the database, the generated master key and the admin token hash. It is
 * created private (0700) and its secret files are written 0600, atomically and without clobbering,
 * because the CLI and a running server may race to create them on a fresh install.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function ensureDataDir(dataDir: string): void {
  try {
    // The mode only applies when the directory is created; an operator-made directory keeps its mode.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new DataDirError(dataDir, `cannot be created (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

export class DataDirError extends Error {
  constructor(
    readonly dataDir: string,
    problem: string,
  ) {
    super(`Data directory ${dataDir} ${problem}; set KEYGATE_DATA_DIR to a writable directory.`);
    this.name = 'DataDirError';
  }
}

export interface SecretFileResult {
  contents: string;
  /** True when this call wrote the file, false when it already existed (possibly written by another process). */
  created: boolean;
}

/**
 * Returns the file's contents, creating it with `generate()` first if it does not exist. The new file
 * is written under a temporary name and hard-linked into place: link() never overwrites, so exactly one
 * racing process wins and every process ends up reading the same complete contents.
 */
export function readOrCreateSecretFile(filePath: string, generate: () => string): SecretFileResult {
  const existing = readIfExists(filePath);
  if (existing !== null) return { contents: existing, created: false };

  const contents = generate();
  const temporary = path.join(path.dirname(filePath), `.${path.basename(filePath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(temporary, contents, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, filePath);
    return { contents, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { contents: readFileSync(filePath, 'utf8'), created: false };
  } finally {
    unlinkSync(temporary);
  }
}

export function readIfExists(filePath: string): string | null {
  try {
    return readFileSync(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
