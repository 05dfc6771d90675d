/**
 * The key store's contract, whichever database holds it (SQLite in the data dir by default, or a
 * shared PostgreSQL for many instances: src/store/postgres/).
 *
 * Two kinds of reads, on purpose:
 * - Management reads and every write (admin API, dashboard, CLI) are async and see the database as
 *   it is when they run.
 * - The S3 request path reads synchronously, from what the store holds in memory, as of the latest
 *   `beginRequest()`: a request awaits beginRequest() before its first lookup (and again after it
 *   waited on its client), which makes every change committed before that moment count, by any
 *   process or instance. That is how a deleted key fails on the very next request everywhere
 *   without a database round trip per lookup.
 */
import type { CorsRule } from '../buckets/cors.js';
import type { AddBucketInput } from '../buckets/validate.js';
import type { AccessKey, AccessKeyWithSecret } from '../keys/model.js';
import type { CreateKeyInput } from '../keys/validate.js';

export type { AddBucketInput } from '../buckets/validate.js';
export type { CorsRule } from '../buckets/cors.js';
export type { CreateKeyInput } from '../keys/validate.js';
export { BucketValidationError } from '../buckets/validate.js';
export { KeyValidationError } from '../keys/validate.js';

/** lastUsedAt is informational; writing it at most once a minute per key and process keeps the hot path read-only. */
export const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/** Which uses of a key get their lastUsedAt written: at most one per LAST_USED_WRITE_INTERVAL_MS per key (both stores). */
export class LastUseThrottle {
  /** accessKeyId -> epoch ms of the last write by this process. */
  private readonly written = new Map<string, number>();

  /** Whether this use is written; if so, it counts as the key's latest write. */
  due(accessKeyId: string, at: Date): boolean {
    const last = this.written.get(accessKeyId);
    if (last !== undefined && at.getTime() - last < LAST_USED_WRITE_INTERVAL_MS) return false;
    this.written.set(accessKeyId, at.getTime());
    return true;
  }

  /** The key was deleted: forget it (keeps the map bounded by the keys that exist). */
  forget(accessKeyId: string): void {
    this.written.delete(accessKeyId);
  }
}

export interface KeyListFilter {
  bucket?: string;
}

/** A key and its unsealed secret, kept apart so the key can travel with a request without its secret. */
export interface KeyForVerification {
  key: Readonly<AccessKey>;
  readonly secretAccessKey: string;
}

export interface BucketRecord {
  name: string;
  datacenter: string | null;
  endpoint: string | null;
  region: string | null;
  upstreamBucket: string;
  cors: CorsRule[] | null;
  createdAt: Date;
}

export interface KeyStore {
  /** Validates, generates and stores a key. Throws KeyValidationError with a message saying what to change. */
  create(input: CreateKeyInput, now?: Date): Promise<AccessKeyWithSecret>;
  /** Keys oldest first, optionally only those scoped to one bucket. Never includes secrets. */
  list(filter?: KeyListFilter): Promise<AccessKey[]>;
  count(): Promise<number>;
  get(accessKeyId: string): Promise<AccessKey | null>;
  /**
   * Disables a key (every request with it is refused, presigned URLs and forms included) or enables
   * it again. Returns the key as it now is, or null when there is no such key. Disabling a disabled
   * key keeps its original disabledAt.
   */
  setDisabled(accessKeyId: string, disabled: boolean, now?: Date): Promise<AccessKey | null>;
  delete(accessKeyId: string): Promise<boolean>;
  /** The key with its unsealed secret, read now (issuing presigned URLs). Throws SealError if the stored secret was tampered with. */
  findWithSecret(accessKeyId: string): Promise<AccessKeyWithSecret | null>;
  /**
   * Request path: the key and its unsealed secret as of the latest beginRequest(), shared with
   * later lookups (never change them). Throws SealError if the stored secret was tampered with.
   */
  findForVerification(accessKeyId: string): KeyForVerification | null;
  /** Records use of a key, at most once per LAST_USED_WRITE_INTERVAL_MS per key and process; never fails a request. */
  touchLastUsed(accessKeyId: string, at?: Date): void;
}

export interface BucketStore {
  /** Registers a bucket. Throws BucketValidationError for invalid input, or with problem 'conflict' if it exists. */
  add(input: AddBucketInput, now?: Date): Promise<BucketRecord>;
  /** Registered buckets by name. */
  list(): Promise<BucketRecord[]>;
  get(name: string): Promise<BucketRecord | null>;
  /** Unregisters a bucket; keys scoped to it stay (re-adding the bucket makes them usable again). */
  remove(name: string): Promise<boolean>;
  /** Replaces the bucket's CORS rules (null clears them). Returns the updated record, or null if the bucket is not registered. */
  setCors(name: string, rules: CorsRule[] | null): Promise<BucketRecord | null>;
  /** Request path: the bucket as of the latest beginRequest(), shared with later lookups (never change it). */
  findForRouting(name: string): Readonly<BucketRecord> | null;
  /** Request path: every registered bucket as of the latest beginRequest(), by name. */
  listForRouting(): readonly Readonly<BucketRecord>[];
}

export interface Store {
  /** Which database: 'sqlite' (one host) or 'postgres' (shared by many instances). */
  readonly kind: 'sqlite' | 'postgres';
  /** Where it is, for logs and messages: a file path, or a PostgreSQL URL without its password. */
  readonly location: string;
  keys: KeyStore;
  buckets: BucketStore;
  /**
   * An S3 request starts (or resumes after waiting on its client): once this settles, request-path
   * lookups see every change committed before the call. Requests that call it together share one
   * read of the database's change counter, made after the last of their calls (SQLite: data_version
   * in the same turn of the event loop; PostgreSQL: the change id, at most one read in flight and
   * one queued). It rejects when that read fails (PostgreSQL: with an S3 ServiceUnavailable error
   * while the database cannot be reached), so nothing stale is ever accepted.
   */
  beginRequest(): Promise<void>;
  /** Whether the change listener (PostgreSQL's LISTEN connection) is up; null when the store has none. */
  listening(): boolean | null;
  /** A key derived from the master key for `purpose` (see crypto/master-key.ts deriveKey). */
  deriveKey(purpose: string): Buffer;
  close(): Promise<void>;
}

/** The store's database cannot be reached or used (PostgreSQL down, wrong URL, refused login). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Network errors; PostgreSQL's connection-level SQLSTATEs (class 08, server shutting down or
 * starting); and its statement or lock timeouts (57014, 55P03), after which the server rolled the
 * statement back.
 */
const UNREACHABLE_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|08...|57P0[123]|57014|55P03)$/;
const UNREACHABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout/i;

/**
 * Whether an error from a store operation means its database could not be reached or did not
 * answer in time (rather than refused the operation): the admin API answers 503 for these, the CLI
 * says to check the database.
 */
export function isStoreUnavailable(error: unknown): boolean {
  for (let depth = 0; error instanceof Error && depth < 5; depth++, error = error.cause) {
    if (error instanceof StoreUnavailableError) return true;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.test(code)) return true;
    if (UNREACHABLE_MESSAGES.test(error.message)) return true;
    if (error instanceof AggregateError && error.errors.some(isStoreUnavailable)) return true;
  }
  return false;
}

/**
 * An error's message fit for logs and for the person at the CLI: drizzle's query errors repeat the
 * statement with every parameter (sealed secrets included), so their cause's message is used; a
 * failed connect reports its first address's failure.
 */
export function storeErrorMessage(error: unknown): string {
  if (error instanceof Error && error.message.startsWith('Failed query:') && error.cause !== undefined) return storeErrorMessage(error.cause);
  // A connection refused on every address the host has (IPv4 and IPv6): the first says it.
  if (error instanceof AggregateError && error.errors.length > 0) return storeErrorMessage(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return error.message !== '' ? error.message : typeof code === 'string' ? code : error.name;
  }
  return String(error);
}
