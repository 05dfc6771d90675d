/**
 * Access keys in the database. Secrets are sealed before they touch the database and unsealed only
 * for request verification (findWithSecret) and the one-time display at creation.
 */
import { asc, eq, sql } from 'drizzle-orm';
import { generateKeyPair } from '../crypto/keygen.js';
import { sealSecret, unsealSecret } from '../crypto/seal.js';
import { isPermission, type AccessKey, type AccessKeyWithSecret } from '../keys/model.js';
import { validateKeyInput, type CreateKeyInput } from '../keys/validate.js';
import { ChangeDetector, FreshnessCache, type Freshness } from './change-detector.js';
import type { KeygateDatabase } from './db.js';
import { accessKeys, type AccessKeyRow } from './schema.js';

export type { CreateKeyInput } from '../keys/validate.js';
export { KeyValidationError } from '../keys/validate.js';

/** lastUsedAt is informational; writing it at most once a minute per key keeps the hot path read-only. */
export const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/** Keys whose row and unsealed secret are kept for verification (oldest dropped first). */
const MAX_CACHED_KEYS = 4096;

export interface KeyListFilter {
  bucket?: string;
}

/** A key and its unsealed secret, kept apart so the key can travel with a request without its secret. */
export interface KeyForVerification {
  key: Readonly<AccessKey>;
  readonly secretAccessKey: string;
}

export class KeyRepository {
  private readonly findById;
  private readonly updateLastUsed;
  /** accessKeyId -> epoch ms of the last lastUsedAt write by this process. */
  private readonly lastTouched = new Map<string, number>();
  private readonly changes: ChangeDetector;
  /** accessKeyId -> row and unsealed secret, valid only while the database is unchanged (see findWithSecret). */
  private readonly verificationCache: FreshnessCache<KeyForVerification>;

  constructor(
    private readonly db: KeygateDatabase,
    private readonly masterKey: Buffer,
    private readonly keyTag: string,
  ) {
    this.changes = ChangeDetector.of(db.$client);
    this.verificationCache = new FreshnessCache(this.changes, MAX_CACHED_KEYS);
    this.findById = db
      .select()
      .from(accessKeys)
      .where(eq(accessKeys.accessKeyId, sql.placeholder('id')))
      .prepare();
    this.updateLastUsed = db
      .update(accessKeys)
      .set({ lastUsedAt: sql`${sql.placeholder('at')}` })
      .where(eq(accessKeys.accessKeyId, sql.placeholder('id')))
      .prepare();
  }

  /** Validates, generates and stores a key. Throws KeyValidationError with a message saying what to change. */
  create(input: CreateKeyInput, now: Date = new Date()): AccessKeyWithSecret {
    const spec = validateKeyInput(input, now);
    const { accessKeyId, secretAccessKey } = generateKeyPair(this.keyTag);
    this.db
      .insert(accessKeys)
      .values({
        accessKeyId,
        name: spec.name,
        kind: spec.kind,
        bucket: spec.bucket,
        permissions: spec.permissions.join(','),
        sealedSecret: sealSecret(this.masterKey, accessKeyId, secretAccessKey),
        expiresAt: spec.expiresAt,
        createdAt: now,
        lastUsedAt: null,
        disabledAt: null,
        rateLimitPerSecond: spec.rateLimit?.requestsPerSecond ?? null,
        rateLimitBurst: spec.rateLimit?.burst ?? null,
        allowedIps: spec.allowedIps?.join(',') ?? null,
        prefix: spec.prefix,
      })
      .run();
    this.changes.noteLocalWrite();
    return {
      accessKeyId,
      secretAccessKey,
      name: spec.name,
      kind: spec.kind,
      bucket: spec.bucket,
      permissions: spec.permissions,
      expiresAt: spec.expiresAt,
      createdAt: now,
      lastUsedAt: null,
      disabledAt: null,
      rateLimit: spec.rateLimit,
      allowedIps: spec.allowedIps,
      prefix: spec.prefix,
    };
  }

  /** Keys oldest first, optionally only those scoped to one bucket. Never includes secrets. */
  list(filter: KeyListFilter = {}): AccessKey[] {
    const query = this.db.select().from(accessKeys);
    const rows = (filter.bucket === undefined ? query : query.where(eq(accessKeys.bucket, filter.bucket)))
      .orderBy(asc(accessKeys.createdAt), asc(accessKeys.accessKeyId))
      .all();
    return rows.map(toAccessKey);
  }

  get(accessKeyId: string): AccessKey | null {
    const row = this.findById.get({ id: accessKeyId });
    return row ? toAccessKey(row) : null;
  }

  /**
   * Disables a key (every request with it is refused, presigned URLs and forms included) or enables
   * it again; like a deletion, the change holds on the very next request of every process. Returns
   * the key as it now is, or null when there is no such key. Disabling a disabled key keeps its
   * original disabledAt.
   */
  setDisabled(accessKeyId: string, disabled: boolean, now: Date = new Date()): AccessKey | null {
    const disabledAt = disabled ? sql`coalesce(${accessKeys.disabledAt}, ${now.getTime()})` : null;
    const result = this.db.update(accessKeys).set({ disabledAt }).where(eq(accessKeys.accessKeyId, accessKeyId)).run();
    this.changes.noteLocalWrite();
    return result.changes > 0 ? this.get(accessKeyId) : null;
  }

  delete(accessKeyId: string): boolean {
    const result = this.db.delete(accessKeys).where(eq(accessKeys.accessKeyId, accessKeyId)).run();
    this.changes.noteLocalWrite();
    this.lastTouched.delete(accessKeyId);
    return result.changes > 0;
  }

  /**
   * The key with its unsealed secret, for SigV4 verification. A key deleted or changed by anyone
   * (this process, the CLI, another server on the same data dir) stops working on the very next
   * request: the row and its unsealed secret are reused only while SQLite's data_version shows no
   * commit by another connection and this repository wrote nothing since they were read (see
   * change-detector.ts). That check replaces a query plus an AES-GCM open on every request.
   * Throws SealError if the stored secret was tampered with.
   */
  findWithSecret(accessKeyId: string, freshness: Freshness = 'now'): AccessKeyWithSecret | null {
    const found = this.findForVerification(accessKeyId, freshness);
    return found === null ? null : { ...found.key, permissions: [...found.key.permissions], secretAccessKey: found.secretAccessKey };
  }

  /** findWithSecret without copying: the key and its secret as cached, shared with later lookups (never change them). */
  findForVerification(accessKeyId: string, freshness: Freshness = 'now'): KeyForVerification | null {
    return this.verificationCache.get(
      accessKeyId,
      () => {
        const row = this.findById.get({ id: accessKeyId });
        return row ? { key: frozenKey(toAccessKey(row)), secretAccessKey: unsealSecret(this.masterKey, row.accessKeyId, row.sealedSecret) } : null;
      },
      freshness,
    );
  }

  /** Records use of a key, at most once per LAST_USED_WRITE_INTERVAL_MS per key and process. */
  touchLastUsed(accessKeyId: string, at: Date = new Date()): void {
    const last = this.lastTouched.get(accessKeyId);
    if (last !== undefined && at.getTime() - last < LAST_USED_WRITE_INTERVAL_MS) return;
    this.lastTouched.set(accessKeyId, at.getTime());
    try {
      this.updateLastUsed.run({ id: accessKeyId, at: at.getTime() });
      // Not a change that matters to verification: keep the cached row, just as current.
      const cached = this.verificationCache.peek(accessKeyId);
      if (cached) cached.key = frozenKey({ ...cached.key, lastUsedAt: at });
    } catch (error) {
      // Another process holding the write lock past busy_timeout must not fail an S3 request over a statistic.
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY')) throw error;
    }
  }
}

/** Shared by every request that uses the key: frozen, so a caller that tried to widen it would throw instead. */
function frozenKey(key: AccessKey): AccessKey {
  Object.freeze(key.permissions);
  if (key.rateLimit !== null) Object.freeze(key.rateLimit);
  if (key.allowedIps !== null) Object.freeze(key.allowedIps);
  return Object.freeze(key);
}

function toAccessKey(row: AccessKeyRow): AccessKey {
  return {
    accessKeyId: row.accessKeyId,
    name: row.name,
    kind: row.kind,
    bucket: row.bucket,
    permissions: row.permissions.split(',').filter(isPermission),
    expiresAt: row.expiresAt,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    disabledAt: row.disabledAt,
    rateLimit: row.rateLimitPerSecond !== null && row.rateLimitBurst !== null ? { requestsPerSecond: row.rateLimitPerSecond, burst: row.rateLimitBurst } : null,
    allowedIps: row.allowedIps === null ? null : row.allowedIps.split(','),
    prefix: row.prefix,
  };
}
