/**
 * The data directory holds the database, the generated master key and the admin token hash. It is
 * created private (0700) and its secret files are written 0600, atomically and without clobbering,
 * because the CLI and a running server may race to create them on a fresh install.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function ensureDataDir(dataDir: string): void {
  try {
    // The mode only applies when the directory is created; an operator-made directory keeps its mode.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const explained = explainAccessError(dataDir, error);
    if (explained !== error) throw explained;
    throw new DataDirError(dataDir, `cannot be created (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

const ACCESS_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'SQLITE_READONLY', 'SQLITE_CANTOPEN']);

/**
 * A permission problem in the data directory, said so an operator can fix it: which path, which
 * user this process runs as, who owns the directory, and the command (the usual case is a Docker
 * bind mount owned by the host's user while the image runs as uid 1000). Other errors are returned
 * unchanged.
 */
export function explainAccessError(dataDir: string, error: unknown): unknown {
  const { code, path: failedPath } = (error ?? {}) as NodeJS.ErrnoException;
  if (code === undefined || !ACCESS_CODES.has(code)) return error;
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const owner = ownerOf(dataDir) ?? ownerOf(path.dirname(dataDir));
  const who = uid === undefined ? 'this process' : `this process (uid ${uid})`;
  const owned = owner === undefined ? '' : `; it belongs to uid ${owner}`;
  const fix =
    uid === undefined
      ? 'make it writable for the user keygate runs as'
      : `e.g. \`chown -R ${uid}:${gid} ${dataDir}\` (for a Docker bind mount, run that on the host)`;
  return new DataDirError(dataDir, `is not writable by ${who} (${code}${failedPath ? ` on ${failedPath}` : ''}${owned}); ${fix}`);
}

function ownerOf(file: string): number | undefined {
  try {
    return statSync(file).uid;
  } catch {
    return undefined;
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
