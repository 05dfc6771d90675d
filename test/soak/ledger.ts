/**
 * The soak's judge: every response is classified against what the gateway must have done, given
 * the request's expectation and the revocations known when it was sent. Kept free of I/O so its
 * rules are unit-tested (ledger.test.ts) apart from the long run.
 *
 * Revocation rule: a deletion is "complete" at the instant its admin API call returned 204 or its
 * CLI process exited 0 (taken on the same performance.now() clock as request start times, after
 * the awaited promise resolved, so it is never earlier than the real commit). A request with that
 * key that *started* after that instant must be refused with 403 InvalidAccessKeyId; a 2xx is an
 * accepted-after-revocation violation. A request in flight across the deletion may go either way.
 */

export type Expectation = 'success' | 'denied';

export interface Judged {
  /** The gateway did what it must. */
  ok: boolean;
  /** The operation took effect upstream (2xx), so the caller's model of the bucket must follow it. */
  applied: boolean;
  category: Category;
}

export type Category =
  | 'success'
  | 'denied-by-scope'
  | 'refused-after-revocation'
  | 'refused-in-flight-revocation'
  | 'VIOLATION accepted-after-revocation'
  | 'VIOLATION wrong-refusal-after-revocation'
  | 'VIOLATION scope-breach'
  | 'VIOLATION gateway-5xx'
  | 'VIOLATION unexpected-status'
  | 'VIOLATION client-error'
  | 'VIOLATION wrong-data';

export interface Revocation {
  accessKeyId: string;
  role: string;
  method: 'admin-api' | 'cli';
  /** When the deletion was asked for (a refusal after this may be the deletion racing the request). */
  requestedAt: number;
  /** When the deletion had completed; undefined while it is still running. */
  completedAt?: number;
  /** Successful requests by other keys that started within OTHERS_WINDOW_MS after completedAt. */
  othersSucceededAfter: number;
  /** Requests with this key that started after completedAt (all must have been refused). */
  probedAfter: number;
  /** probedAfter per gateway instance the request was sent to (several instances share one key store). */
  probedAfterByInstance: Map<number, number>;
}

export interface ResponseFacts {
  accessKeyId: string;
  operation: string;
  expectation: Expectation;
  status: number;
  errorCode: string | null;
  startedAt: number;
  endedAt: number;
  /** What the request addressed (bucket/key), for violation reports. */
  target?: string;
  /** HEAD: an error answer has no body, so only its status can be checked, not its code. */
  bodiless?: boolean;
  /** Which gateway instance answered (0 when there is only one). */
  instance?: number;
}

export interface Violation {
  category: Category;
  operation: string;
  accessKeyId: string;
  status: number;
  errorCode: string | null;
  detail: string;
}

/** How long after a deletion other keys must be seen succeeding. */
export const OTHERS_WINDOW_MS = 5_000;
const KEPT_VIOLATIONS = 25;

export class Ledger {
  readonly revocations = new Map<string, Revocation>();
  readonly categories = new Map<Category, number>();
  readonly statuses = new Map<number, number>();
  readonly operations = new Map<string, number>();
  readonly violations: Violation[] = [];
  /** Requests (answered or failed on the client side) per gateway instance. */
  readonly requestsByInstance = new Map<number, number>();
  violationCount = 0;
  requests = 0;

  revocationRequested(accessKeyId: string, role: string, method: Revocation['method'], at: number): Revocation {
    const revocation: Revocation = {
      accessKeyId,
      role,
      method,
      requestedAt: at,
      othersSucceededAfter: 0,
      probedAfter: 0,
      probedAfterByInstance: new Map(),
    };
    this.revocations.set(accessKeyId, revocation);
    return revocation;
  }

  revocationCompleted(accessKeyId: string, at: number): void {
    const revocation = this.revocations.get(accessKeyId);
    if (!revocation) throw new Error(`no revocation was requested for ${accessKeyId}`);
    revocation.completedAt = at;
  }

  /** Classifies one response and records it. */
  judge(facts: ResponseFacts): Judged {
    const judged = this.classify(facts);
    this.requests++;
    bump(this.requestsByInstance, facts.instance ?? 0);
    bump(this.statuses, facts.status);
    bump(this.operations, facts.operation);
    this.record(judged.category, facts, facts.target ?? '');
    if (judged.category === 'success') this.creditOthers(facts);
    return judged;
  }

  /** A transport-level failure (no HTTP response). */
  clientError(operation: string, accessKeyId: string, detail: string, instance = 0): void {
    this.requests++;
    bump(this.requestsByInstance, instance);
    bump(this.operations, operation);
    this.record('VIOLATION client-error', { operation, accessKeyId, status: 0, errorCode: null }, detail);
  }

  /** A 2xx whose content was not what was stored (GET bytes, listing, HEAD length). */
  wrongData(operation: string, accessKeyId: string, detail: string): void {
    this.record('VIOLATION wrong-data', { operation, accessKeyId, status: 200, errorCode: null }, detail);
  }

  count(category: Category): number {
    return this.categories.get(category) ?? 0;
  }

  requestsOn(instance: number): number {
    return this.requestsByInstance.get(instance) ?? 0;
  }

  private classify(facts: ResponseFacts): Judged {
    const { status } = facts;
    const codeIs = (code: string) => facts.errorCode === code || (facts.bodiless === true && facts.errorCode === null);
    const success = status >= 200 && status < 300;
    const revocation = this.revocations.get(facts.accessKeyId);
    if (revocation?.completedAt !== undefined && facts.startedAt > revocation.completedAt) {
      revocation.probedAfter++;
      bump(revocation.probedAfterByInstance, facts.instance ?? 0);
      if (status === 403 && codeIs('InvalidAccessKeyId')) return { ok: true, applied: false, category: 'refused-after-revocation' };
      if (success) return { ok: false, applied: true, category: 'VIOLATION accepted-after-revocation' };
      return { ok: false, applied: false, category: 'VIOLATION wrong-refusal-after-revocation' };
    }
    if (revocation && revocation.requestedAt <= facts.endedAt && status === 403 && codeIs('InvalidAccessKeyId')) {
      return { ok: true, applied: false, category: 'refused-in-flight-revocation' };
    }
    if (status >= 500) return { ok: false, applied: false, category: 'VIOLATION gateway-5xx' };
    if (facts.expectation === 'denied') {
      if (status === 403 && codeIs('AccessDenied')) return { ok: true, applied: false, category: 'denied-by-scope' };
      if (success) return { ok: false, applied: true, category: 'VIOLATION scope-breach' };
      return { ok: false, applied: false, category: 'VIOLATION unexpected-status' };
    }
    if (success) return { ok: true, applied: true, category: 'success' };
    return { ok: false, applied: false, category: 'VIOLATION unexpected-status' };
  }

  private creditOthers(facts: ResponseFacts): void {
    for (const revocation of this.revocations.values()) {
      if (revocation.accessKeyId === facts.accessKeyId || revocation.completedAt === undefined) continue;
      const sinceDeletion = facts.startedAt - revocation.completedAt;
      if (sinceDeletion > 0 && sinceDeletion <= OTHERS_WINDOW_MS) revocation.othersSucceededAfter++;
    }
  }

  private record(category: Category, facts: Pick<ResponseFacts, 'operation' | 'accessKeyId' | 'status' | 'errorCode'>, detail: string): void {
    bump(this.categories, category);
    if (!category.startsWith('VIOLATION')) return;
    this.violationCount++;
    if (this.violations.length < KEPT_VIOLATIONS) {
      this.violations.push({ category, operation: facts.operation, accessKeyId: facts.accessKeyId, status: facts.status, errorCode: facts.errorCode, detail });
    }
  }
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
