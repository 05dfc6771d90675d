/**
 * Access keys in the PostgreSQL store. Management reads and writes go to the database; the request
 * path reads the replica (replica.ts), which every write here reaches through the change signal.
 */
import { asc, count, eq, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { generateKeyPair } from '../../crypto/keygen.js';
import { sealSecret, unsealSecret } from '../../crypto/seal.js';
import type { AccessKey, AccessKeyWithSecret } from '../../keys/model.js';
import { validateKeyInput, type CreateKeyInput } from '../../keys/validate.js';
import { createdKey, newKeyRow, toAccessKey } from '../rows.js';
import { LastUseThrottle, type KeyForVerification, type KeyListFilter, type KeyStore } from '../store.js';
import type { LastUsedWriter } from './last-used.js';
import type { StoreReplica } from './replica.js';
import { accessKeys } from './schema.js';

export class PostgresKeyRepository implements KeyStore {
  private readonly lastUse = new LastUseThrottle();

  constructor(
    private readonly db: NodePgDatabase<Record<string, unknown>>,
    private readonly lastUsedWriter: LastUsedWriter,
    private readonly replica: StoreReplica,
    private readonly masterKey: Buffer,
    private readonly keyTag: string,
  ) {}

  async create(input: CreateKeyInput, now: Date = new Date()): Promise<AccessKeyWithSecret> {
    const spec = validateKeyInput(input, now);
    const { accessKeyId, secretAccessKey } = generateKeyPair(this.keyTag);
    await this.db.insert(accessKeys).values(newKeyRow(accessKeyId, sealSecret(this.masterKey, accessKeyId, secretAccessKey), spec, now));
    return createdKey(accessKeyId, secretAccessKey, spec, now);
  }

  async list(filter: KeyListFilter = {}): Promise<AccessKey[]> {
    const query = this.db.select().from(accessKeys);
    const rows = await (filter.bucket === undefined ? query : query.where(eq(accessKeys.bucket, filter.bucket))).orderBy(
      asc(accessKeys.createdAt),
      asc(accessKeys.accessKeyId),
    );
    return rows.map(toAccessKey);
  }

  async count(): Promise<number> {
    const [row] = await this.db.select({ keys: count() }).from(accessKeys);
    return row?.keys ?? 0;
  }

  async get(accessKeyId: string): Promise<AccessKey | null> {
    const [row] = await this.db.select().from(accessKeys).where(eq(accessKeys.accessKeyId, accessKeyId)).limit(1);
    return row ? toAccessKey(row) : null;
  }

  async setDisabled(accessKeyId: string, disabled: boolean, now: Date = new Date()): Promise<AccessKey | null> {
    const disabledAt = disabled ? sql`coalesce(${accessKeys.disabledAt}, ${now.toISOString()}::timestamptz)` : null;
    const [row] = await this.db.update(accessKeys).set({ disabledAt }).where(eq(accessKeys.accessKeyId, accessKeyId)).returning();
    return row ? toAccessKey(row) : null;
  }

  async delete(accessKeyId: string): Promise<boolean> {
    const deleted = await this.db.delete(accessKeys).where(eq(accessKeys.accessKeyId, accessKeyId)).returning({ id: accessKeys.accessKeyId });
    this.lastUse.forget(accessKeyId);
    return deleted.length > 0;
  }

  async findWithSecret(accessKeyId: string): Promise<AccessKeyWithSecret | null> {
    const [row] = await this.db.select().from(accessKeys).where(eq(accessKeys.accessKeyId, accessKeyId)).limit(1);
    return row ? { ...toAccessKey(row), secretAccessKey: unsealSecret(this.masterKey, row.accessKeyId, row.sealedSecret) } : null;
  }

  findForVerification(accessKeyId: string): KeyForVerification | null {
    return this.replica.key(accessKeyId);
  }

  /** Once a minute per key and instance, never awaited (see last-used.ts). */
  touchLastUsed(accessKeyId: string, at: Date = new Date()): void {
    if (!this.lastUse.due(accessKeyId, at)) return;
    this.lastUsedWriter.note(accessKeyId, at);
  }
}
