/**
 * Dashboard sessions: made at sign-in with the admin token, kept in this process's memory (a
 * restart signs everyone out), ended by sign-out, by idle expiry, or by the absolute lifetime.
 * Each session carries its CSRF token and the one-time values it may show once (a new key's
 * secret), so nothing secret ever sits in a URL, a cookie or a page that can be reloaded.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface SessionOptions {
  /** A session unused for this long is gone. */
  idleTimeoutMs: number;
  /** A session is gone this long after sign-in, used or not. */
  maxLifetimeMs?: number;
  /** Sessions kept at most (the oldest are dropped first); sign-in needs the admin token, so this only bounds memory. */
  maxSessions?: number;
  now?: () => number;
}

export interface Session {
  /** Echoed in every form as `_csrf`; compared in constant time. */
  readonly csrfToken: string;
  /** Notices for the next page (e.g. "key revoked"), shown once. */
  notices: string[];
}

interface StoredSession extends Session {
  readonly createdAt: number;
  lastSeenAt: number;
  /** One-time values by their random handle, with when they stop being shown. */
  readonly once: Map<string, { value: unknown; expiresAt: number }>;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;
const DEFAULT_MAX_LIFETIME_MS = 12 * 60 * 60_000;
const DEFAULT_MAX_SESSIONS = 1000;
/** A new key's secret can be viewed within this time of its creation, once. */
export const ONE_TIME_VIEW_MS = 5 * 60_000;
const MAX_ONE_TIME_VALUES = 16;

export class SessionStore {
  /** SHA-256 of the session id -> session: the ids themselves are never kept. */
  private readonly sessions = new Map<string, StoredSession>();
  private readonly idleTimeoutMs: number;
  private readonly maxLifetimeMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(options: SessionOptions) {
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.maxLifetimeMs = options.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.now = options.now ?? Date.now;
  }

  /** Starts a session; returns the id for the cookie. */
  create(): { id: string; session: Session } {
    this.dropExpired();
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomToken();
    const now = this.now();
    const session: StoredSession = { csrfToken: randomToken(), notices: [], createdAt: now, lastSeenAt: now, once: new Map() };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session for a cookie value (and marks it used), or null. */
  get(id: string | undefined): Session | null {
    if (id === undefined || id.length !== TOKEN_LENGTH) return null;
    const handle = digest(id);
    const session = this.sessions.get(handle);
    if (session === undefined) return null;
    const now = this.now();
    if (this.expired(session, now)) {
      this.sessions.delete(handle);
      return null;
    }
    session.lastSeenAt = now;
    return session;
  }

  destroy(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(digest(id));
  }

  /** Keeps a value the session may take once (within ONE_TIME_VIEW_MS); returns its handle for a URL. */
  keepOnce(session: Session, value: unknown): string {
    const stored = session as StoredSession;
    const now = this.now();
    for (const [handle, entry] of stored.once) if (entry.expiresAt <= now) stored.once.delete(handle);
    while (stored.once.size >= MAX_ONE_TIME_VALUES) stored.once.delete(stored.once.keys().next().value!);
    const handle = randomToken();
    stored.once.set(handle, { value, expiresAt: now + ONE_TIME_VIEW_MS });
    return handle;
  }

  /**
   * The value kept under this handle, removed as it is read; null when taken, expired or unknown,
   * or when it does not satisfy `belongs` (then it stays, for the page it was kept for).
   */
  takeOnce(session: Session, handle: string | undefined, belongs: (value: unknown) => boolean = () => true): unknown {
    if (handle === undefined) return null;
    const stored = session as StoredSession;
    const entry = stored.once.get(handle);
    if (entry === undefined || !belongs(entry.value)) return null;
    stored.once.delete(handle);
    return entry.expiresAt > this.now() ? entry.value : null;
  }

  private expired(session: StoredSession, now: number): boolean {
    return now - session.lastSeenAt >= this.idleTimeoutMs || now - session.createdAt >= this.maxLifetimeMs;
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [handle, session] of this.sessions) if (this.expired(session, now)) this.sessions.delete(handle);
  }
}

/** Whether a submitted CSRF token is the session's (constant time). */
export function csrfTokenMatches(session: Session, submitted: unknown): boolean {
  if (typeof submitted !== 'string') return false;
  const given = Buffer.from(submitted);
  const expected = Buffer.from(session.csrfToken);
  // Byte lengths, not string lengths: "é" is one character and two bytes.
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * At most `failures` failures per window (a sliding count, for the whole listener): sign-in with
 * a wrong admin token pauses once guessing goes beyond what a person mistyping does.
 */
export class FailureBudget {
  private readonly failures: number[] = [];
  constructor(private readonly options: { failures: number; windowMs: number; now: () => number }) {}

  note(): void {
    this.failures.push(this.options.now());
    this.forgetOld();
  }

  /** 0 when another attempt may be made now; otherwise the seconds to wait. */
  secondsUntilAllowed(): number {
    this.forgetOld();
    if (this.failures.length < this.options.failures) return 0;
    return Math.max(1, Math.ceil((this.failures[0]! + this.options.windowMs - this.options.now()) / 1000));
  }

  private forgetOld(): void {
    const oldest = this.options.now() - this.options.windowMs;
    while (this.failures.length > 0 && this.failures[0]! <= oldest) this.failures.shift();
    if (this.failures.length > this.options.failures) this.failures.splice(0, this.failures.length - this.options.failures);
  }
}

const TOKEN_BYTES = 32;
const TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 4) / 3);

function randomToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}
