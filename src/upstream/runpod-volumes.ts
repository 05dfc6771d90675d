/**
 * Creating and deleting RunPod network volumes through RunPod's REST API, for the bucket lifecycle
 * (src/buckets/lifecycle.ts). Volume discovery (listing) is in runpod.ts.
 *
 * v2, the default base URL (`https://api.runpod.io/v2`):
 *   POST   {base}/network-volumes        {"name", "size", "dataCenter"}   -> 201 the volume ({"id", …})
 *   DELETE {base}/network-volumes/{id}                                     -> 200/204
 *   GET    {base}/network-volumes        (before a create: is the name free? after a DELETE answered 404: is the volume really gone?)
 * A base URL ending in /v1 (`https://rest.runpod.io/v1`) uses v1's paths and field name:
 *   POST   {base}/networkvolumes         {"name", "size", "dataCenterId"} -> 200 the volume
 *   DELETE {base}/networkvolumes/{id}
 *   GET    {base}/networkvolumes
 * Every call carries `Authorization: Bearer <RUNPOD_API_KEY>`.
 *
 * Calls are bounded: a whole-call timeout and a cap on the answer read. A failure is a
 * RunpodRestError saying what happened, whether RunPod may have acted on the call anyway (a
 * timeout after the request was sent), and at most a short, sanitized quote of RunPod's own message:
 * the answer is never relayed whole, and the API key never appears in a message.
 */
import { request, type Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { readAtMost } from '../read-at-most.js';
import { datacenterField, describeNetworkError } from './runpod.js';
import { normalizeDatacenter } from './runpod-datacenters.js';

/**
 * - `unreachable`: no connection was made, so nothing was sent;
 * - `timeout`: no (complete) answer in time; RunPod may have acted;
 * - `interrupted`: the connection failed after the request was sent; RunPod may have acted;
 * - `unauthorized`: 401/403, RunPod refused the API key;
 * - `not_found`: 404;
 * - `rejected`: any other 4xx (an invalid size or datacenter, a volume in use…);
 * - `rate_limited`: 429;
 * - `server_error`: 5xx; RunPod may have acted;
 * - `bad_response`: a success whose answer is not what RunPod documents (too large, not JSON, no
 *   usable volume id); RunPod did act.
 */
export type RunpodRestFailure =
  'unreachable' | 'timeout' | 'interrupted' | 'unauthorized' | 'not_found' | 'rejected' | 'rate_limited' | 'server_error' | 'bad_response';

export interface RunpodRestErrorDetails {
  /** The call, e.g. `POST /v2/network-volumes` (path only: no host, no key). */
  call: string;
  /** RunPod's HTTP status, null when there was no answer. */
  status: number | null;
  /** A short quote of the `message`/`error` field of RunPod's answer, sanitized; null when it has none. */
  runpodMessage: string | null;
  /** Whether RunPod may have carried the call out although it failed (for a create: a volume may exist). */
  mayHaveActed: boolean;
  /** From a 429's Retry-After, in seconds (1 to 300). */
  retryAfterSeconds: number | null;
}

/** A failed REST call; `message` is for the operator's log (no key, no raw answer). */
export class RunpodRestError extends Error {
  readonly failure: RunpodRestFailure;
  readonly details: RunpodRestErrorDetails;

  constructor(failure: RunpodRestFailure, message: string, details: RunpodRestErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunpodRestError';
    this.failure = failure;
    this.details = details;
  }
}

export interface CreateVolumeInput {
  /** The volume's display name in the RunPod console. */
  name: string;
  sizeGb: number;
  /** Upper-case datacenter id. */
  datacenter: string;
}

export interface CreatedVolume {
  /** RunPod's id of the volume: its bucket name on the datacenter's S3 API. */
  id: string;
  /** The datacenter RunPod reports for it (upper case), null when the answer does not say. */
  datacenter: string | null;
}

/** A volume of the account's list, as far as the bucket lifecycle reads it. */
export interface ListedVolumeSummary {
  id: string;
  /** Its display name in the RunPod console, null when the answer has none. */
  name: string | null;
  /** Upper-case datacenter id, null when the answer does not say. */
  datacenter: string | null;
}

/** What the bucket lifecycle needs of RunPod's REST API. */
export interface RunpodVolumeRest {
  createVolume(input: CreateVolumeInput): Promise<CreatedVolume>;
  /** 'not_found' when RunPod has no such volume (already deleted). */
  deleteVolume(volumeId: string): Promise<'deleted' | 'not_found'>;
  /** Every network volume of the account, asked for now (never cached). */
  listVolumes(): Promise<ListedVolumeSummary[]>;
}

export interface RunpodVolumeApiOptions {
  /** REST base URL, e.g. https://api.runpod.io/v2 or https://rest.runpod.io/v1. */
  restUrl: string;
  apiKey: string;
  /** Whole-call timeout. Default 30 s. */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** One volume's JSON is well under 1 KiB; anything near this is not RunPod's answer. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The account's whole volume list (as volume discovery reads it). */
const MAX_LIST_BYTES = 8 * 1024 * 1024;
/** How much of RunPod's own message an error quotes. */
const MAX_QUOTED_CHARS = 160;
/**
 * Volume ids become bucket names on RunPod's S3 API and path segments of every request to it:
 * letters, digits, `_` and `-` only (RunPod's ids are lower-case alphanumerics), never `.`/`..`.
 */
const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** Network errors that happen before a request is sent: RunPod cannot have seen it. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export class RunpodVolumeApi implements RunpodVolumeRest {
  readonly version: 'v1' | 'v2';
  private readonly collectionUrl: string;
  /** The collection's path for messages and logs, e.g. /v2/network-volumes. */
  private readonly collectionPath: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: RunpodVolumeApiOptions) {
    const base = options.restUrl.replace(/\/+$/, '');
    this.version = /\/v1$/i.test(base) ? 'v1' : 'v2';
    this.collectionUrl = `${base}/${this.version === 'v1' ? 'networkvolumes' : 'network-volumes'}`;
    this.collectionPath = new URL(this.collectionUrl).pathname;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Null without RUNPOD_API_KEY. */
  static fromConfig(config: Pick<Config, 'runpodApiKey' | 'runpodRestUrl'>): RunpodVolumeApi | null {
    if (config.runpodApiKey === null) return null;
    return new RunpodVolumeApi({ restUrl: config.runpodRestUrl, apiKey: config.runpodApiKey });
  }

  async createVolume(input: CreateVolumeInput): Promise<CreatedVolume> {
    const datacenterField = this.version === 'v1' ? 'dataCenterId' : 'dataCenter';
    const body = JSON.stringify({ name: input.name, size: input.sizeGb, [datacenterField]: input.datacenter });
    const call = `POST ${this.collectionPath}`;
    const answer = await this.send(this.collectionUrl, 'POST', body, call);
    if (answer.status < 200 || answer.status > 299) throw this.failed(call, answer);
    if (answer.text === null) {
      throw new RunpodRestError('bad_response', `RunPod answered ${call} with HTTP ${answer.status} and more than ${MAX_ANSWER_BYTES} bytes.`, {
        ...this.noQuote(call, answer.status),
        mayHaveActed: true,
      });
    }
    const created = parseCreatedVolume(answer.text);
    if (created === null) {
      throw new RunpodRestError('bad_response', `RunPod answered ${call} with HTTP ${answer.status} but without a usable volume id.`, {
        ...this.noQuote(call, answer.status),
        mayHaveActed: true,
      });
    }
    return created;
  }

  async deleteVolume(volumeId: string): Promise<'deleted' | 'not_found'> {
    const call = `DELETE ${this.collectionPath}/${encodeURIComponent(volumeId)}`;
    const answer = await this.send(`${this.collectionUrl}/${encodeURIComponent(volumeId)}`, 'DELETE', null, call);
    if (answer.status >= 200 && answer.status <= 299) return 'deleted';
    if (answer.status !== 404) throw this.failed(call, answer);
    // A wrong base URL answers 404 too: the volume is gone only if the account's list says so.
    if (!(await this.listsVolume(volumeId))) return 'not_found';
    throw new RunpodRestError('rejected', `RunPod answered ${call} with HTTP 404 but still lists the volume.`, { ...this.noQuote(call, 404) });
  }

  async listVolumes(): Promise<ListedVolumeSummary[]> {
    const call = `GET ${this.collectionPath}`;
    const answer = await this.send(this.collectionUrl, 'GET', null, call, MAX_LIST_BYTES);
    if (answer.status !== 200) throw this.failed(call, answer);
    const volumes = answer.text === null ? null : parseVolumeList(answer.text);
    if (volumes === null) {
      throw new RunpodRestError('bad_response', `RunPod answered ${call} with something that is not a list of network volumes.`, this.noQuote(call, 200));
    }
    return volumes;
  }

  /** Whether the account's volume list (GET on the collection) has this id. */
  private async listsVolume(volumeId: string): Promise<boolean> {
    return (await this.listVolumes()).some((volume) => volume.id === volumeId);
  }

  private async send(
    url: string,
    method: 'GET' | 'POST' | 'DELETE',
    body: string | null,
    call: string,
    limit = MAX_ANSWER_BYTES,
  ): Promise<{ status: number; text: string | null; retryAfter: string | undefined }> {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method,
        headers: {
          authorization: `Bearer ${this.options.apiKey}`,
          accept: 'application/json',
          ...(body === null ? {} : { 'content-type': 'application/json' }),
        },
        body: body ?? undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        dispatcher: this.options.dispatcher,
      });
    } catch (error) {
      throw this.networkFailure(call, error, null);
    }
    let bytes: Buffer | null;
    try {
      bytes = await readAtMost(response.body, limit);
    } catch (error) {
      throw this.networkFailure(call, error, response.statusCode);
    }
    const retryAfter = response.headers['retry-after'];
    return {
      status: response.statusCode,
      text: bytes === null ? null : bytes.toString('utf8'),
      retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
    };
  }

  private networkFailure(call: string, error: unknown, status: number | null): RunpodRestError {
    const code = (error as { code?: unknown } | null)?.code;
    const described = describeNetworkError(error);
    const details = { ...this.noQuote(call, status), mayHaveActed: true };
    if (status === null && typeof code === 'string' && NOT_SENT_CODES.has(code)) {
      return new RunpodRestError(
        'unreachable',
        `Could not connect to the RunPod REST API for ${call} (${code}).`,
        { ...details, mayHaveActed: false },
        { cause: error },
      );
    }
    if (described === 'timed out') {
      return new RunpodRestError('timeout', `The RunPod REST API did not answer ${call} within ${this.timeoutMs} ms.`, details, { cause: error });
    }
    return new RunpodRestError('interrupted', `The connection to the RunPod REST API failed during ${call} (${this.redact(described)}).`, details, {
      cause: error,
    });
  }

  private failed(call: string, answer: { status: number; text: string | null; retryAfter: string | undefined }): RunpodRestError {
    const { status } = answer;
    const runpodMessage = answer.text === null ? null : quotedMessage(answer.text, this.options.apiKey);
    const quote = runpodMessage === null ? '' : `: "${runpodMessage}"`;
    const details: RunpodRestErrorDetails = { call, status, runpodMessage, mayHaveActed: false, retryAfterSeconds: null };
    const say = (failure: RunpodRestFailure, what: string, extra: Partial<RunpodRestErrorDetails> = {}) =>
      new RunpodRestError(failure, `RunPod answered ${call} with HTTP ${status}${quote} (${what}).`, { ...details, ...extra });
    if (status === 401 || status === 403) return say('unauthorized', 'the API key was refused');
    if (status === 404) return say('not_found', 'no such resource');
    if (status === 429) return say('rate_limited', 'too many requests', { retryAfterSeconds: retryAfterSeconds(answer.retryAfter) });
    if (status >= 400 && status <= 499) return say('rejected', 'the request was refused');
    if (status >= 500) return say('server_error', 'a RunPod-side failure', { mayHaveActed: true });
    // 1xx/3xx: nothing RunPod documents (redirects are not followed).
    return say('bad_response', 'an unexpected status', { mayHaveActed: true });
  }

  private noQuote(call: string, status: number | null): RunpodRestErrorDetails {
    return { call, status, runpodMessage: null, mayHaveActed: false, retryAfterSeconds: null };
  }

  private redact(text: string): string {
    return text.split(this.options.apiKey).join('[redacted]');
  }
}

/** The id (and datacenter) of a created volume: v2 and v1 answer with the volume itself, some wrap it in `networkVolume`. */
export function parseCreatedVolume(text: string): CreatedVolume | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const item = isRecord(parsed) && isRecord(parsed.networkVolume) ? parsed.networkVolume : parsed;
  if (!isRecord(item) || typeof item.id !== 'string' || !VOLUME_ID.test(item.id)) return null;
  const datacenter = datacenterField(item);
  return { id: item.id, datacenter: datacenter === null ? null : normalizeDatacenter(datacenter) };
}

/** The volumes of a list answer: v2 `{"networkVolumes": [...]}` or v1 `[...]`; items without a string id are skipped. Null for anything else. */
export function parseVolumeList(text: string): ListedVolumeSummary[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const items = Array.isArray(parsed) ? parsed : isRecord(parsed) && Array.isArray(parsed.networkVolumes) ? parsed.networkVolumes : null;
  if (items === null) return null;
  const volumes: ListedVolumeSummary[] = [];
  for (const item of items) {
    if (!isRecord(item) || typeof item.id !== 'string' || item.id === '') continue;
    const datacenter = datacenterField(item);
    volumes.push({
      id: item.id,
      name: typeof item.name === 'string' ? item.name : null,
      datacenter: datacenter === null ? null : normalizeDatacenter(datacenter),
    });
  }
  return volumes;
}

/**
 * The human-readable message of a RunPod error answer (`message`, `error`, `error.message`,
 * `errors[0].message`, `detail`), made safe to show: the API key removed, control characters and
 * runs of whitespace collapsed, at most MAX_QUOTED_CHARS characters. Null for answers without one
 * (HTML pages, empty bodies).
 */
export function quotedMessage(text: string, apiKey: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(parsed)) return null;
  const error = parsed.error;
  const errors = parsed.errors;
  const first = Array.isArray(errors) ? (errors[0] as unknown) : undefined;
  const candidates = [parsed.message, error, isRecord(error) ? error.message : undefined, isRecord(first) ? first.message : first, parsed.detail];
  const message = candidates.find((value): value is string => typeof value === 'string' && value.trim() !== '');
  if (message === undefined) return null;
  const cleaned = message
    .split(apiKey)
    .join('[redacted]')
    // eslint-disable-next-line no-control-regex -- control characters are what is removed
    .replace(/[\u0000-\u001F\u007F-\u009F\u2028\u2029"]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (cleaned === '') return null;
  return cleaned.length > MAX_QUOTED_CHARS ? `${cleaned.slice(0, MAX_QUOTED_CHARS - 1)}…` : cleaned;
}

function retryAfterSeconds(value: string | undefined): number | null {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return null;
  return Math.min(300, Math.max(1, Number(value)));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
