/**
 * Access keys in the SQLite store. Secrets are sealed before they touch the database and unsealed
 * only for request verification and the one-time display at creation.
 */
import { asc, count, eq, sql } from 'drizzle-orm';
import { generateKeyPair } from '../crypto/keygen.js';
import { sealSecret, unsealSecret } from '../crypto/seal.js';
import type { AccessKey, AccessKeyWithSecret } from '../keys/model.js';
import { validateKeyInput, type CreateKeyInput } from '../keys/validate.js';
import { ChangeDetector, FreshnessCache, type Freshness } from './change-detector.js';
import type { KeygateDatabase } from './db.js';
import { createdKey, frozenKey, newKeyRow, toAccessKey } from './rows.js';
import { accessKeys } from './schema.js';
import { LastUseThrottle, type KeyForVerification, type KeyListFilter, type KeyStore } from './store.js';

/** Keys whose row and unsealed secret are kept for verification (oldest dropped first). */
const MAX_CACHED_KEYS = 4096;

export class KeyRepository implements KeyStore {
  private readonly findById;
  private readonly updateLastUsed;
  private readonly lastUse = new LastUseThrottle();
  private readonly changes: ChangeDetector;
  /** accessKeyId -> row and unsealed secret, valid only while the database is unchanged (see findForVerification). */
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

  async create(input: CreateKeyInput, now: Date = new Date()): Promise<AccessKeyWithSecret> {
    const spec = validateKeyInput(input, now);
    const { accessKeyId, secretAccessKey } = generateKeyPair(this.keyTag);
    this.db
      .insert(accessKeys)
      .values(newKeyRow(accessKeyId, sealSecret(this.masterKey, accessKeyId, secretAccessKey), spec, now))
      .run();
    this.changes.noteLocalWrite();
    return createdKey(accessKeyId, secretAccessKey, spec, now);
  }

  async list(filter: KeyListFilter = {}): Promise<AccessKey[]> {
    const query = this.db.select().from(accessKeys);
    const rows = (filter.bucket === undefined ? query : query.where(eq(accessKeys.bucket, filter.bucket)))
      .orderBy(asc(accessKeys.createdAt), asc(accessKeys.accessKeyId))
      .all();
    return rows.map(toAccessKey);
  }

  async count(): Promise<number> {
    return this.db.select({ keys: count() }).from(accessKeys).get()?.keys ?? 0;
  }

  async get(accessKeyId: string): Promise<AccessKey | null> {
    const row = this.findById.get({ id: accessKeyId });
    return row ? toAccessKey(row) : null;
  }

  async setDisabled(accessKeyId: string, disabled: boolean, now: Date = new Date()): Promise<AccessKey | null> {
    const disabledAt = disabled ? sql`coalesce(${accessKeys.disabledAt}, ${now.getTime()})` : null;
    const result = this.db.update(accessKeys).set({ disabledAt }).where(eq(accessKeys.accessKeyId, accessKeyId)).run();
    this.changes.noteLocalWrite();
    return result.changes > 0 ? this.get(accessKeyId) : null;
  }

  async delete(accessKeyId: string): Promise<boolean> {
    const result = this.db.delete(accessKeys).where(eq(accessKeys.accessKeyId, accessKeyId)).run();
    this.changes.noteLocalWrite();
    this.lastUse.forget(accessKeyId);
    return result.changes > 0;
  }

  async findWithSecret(accessKeyId: string): Promise<AccessKeyWithSecret | null> {
    const found = this.findForVerification(accessKeyId, 'now');
    return found === null ? null : { ...found.key, permissions: [...found.key.permissions], secretAccessKey: found.secretAccessKey };
  }

  /**
   * A key deleted or changed by anyone (this process, the CLI, another server on the same data dir)
   * stops working on the very next request: the row and its unsealed secret are reused only while
   * SQLite's data_version shows no commit by another connection and this repository wrote nothing
   * since they were read (see change-detector.ts). That check replaces a query plus an AES-GCM open
   * on every request.
   */
  findForVerification(accessKeyId: string, freshness: Freshness = 'request'): KeyForVerification | null {
    return this.verificationCache.get(
      accessKeyId,
      () => {
        const row = this.findById.get({ id: accessKeyId });
        return row ? { key: frozenKey(toAccessKey(row)), secretAccessKey: unsealSecret(this.masterKey, row.accessKeyId, row.sealedSecret) } : null;
      },
      freshness,
    );
  }

  touchLastUsed(accessKeyId: string, at: Date = new Date()): void {
    if (!this.lastUse.due(accessKeyId, at)) return;
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
