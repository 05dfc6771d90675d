/**
 * The structured access log: one JSON object per S3 request, one per line. Built only from the
 * request record (src/http/s3.ts), which never holds secrets, signatures or credentials.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AccessLogTarget } from '../config.js';
import type { S3RequestRecord } from '../http/s3.js';
import { logToStderr } from './log.js';

export interface AccessLog {
  write(record: S3RequestRecord): void;
  close(): Promise<void>;
}

/**
 * The line for one request. Field names are stable: log pipelines parse them. Built field by field
 * (the same text JSON.stringify makes of the object, in the same order) because stringifying a
 * fresh object per request was a measurable share of a small request's CPU.
 */
export function accessLogLine(record: S3RequestRecord, time?: Date): string {
  return (
    `{"time":"${time === undefined ? isoNow() : time.toISOString()}","type":"access","requestId":${jsonString(record.requestId)}` +
    `,"remoteAddress":${jsonString(record.remoteAddress)},"accessKeyId":${jsonString(record.accessKeyId)}` +
    `,"method":${jsonString(record.method)},"operation":${jsonString(record.operation)},"bucket":${jsonString(record.bucket)}` +
    `,"key":${jsonString(record.objectKey)},"status":${jsonNumber(record.status)},"errorCode":${jsonString(record.errorCode)}` +
    `,"bytesIn":${jsonNumber(record.bytesIn)},"bytesOut":${jsonNumber(record.bytesOut)}` +
    `,"durationMs":${jsonNumber(Math.round(record.durationMs * 1000) / 1000)},"aborted":${record.aborted ? 'true' : 'false'}}\n`
  );
}

/** Printable ASCII without `"` and `\`: JSON text as it is, between quotes. */
const PLAIN_JSON_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** JSON.stringify(value), without its call for the usual plain values (ids, names, method, operation). */
function jsonString(value: string | null): string {
  if (value === null) return 'null';
  return PLAIN_JSON_TEXT.test(value) ? `"${value}"` : JSON.stringify(value);
}

/** JSON.stringify(value) for a number (null for NaN and the infinities, as JSON has no such numbers). */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

/** The current time as ISO 8601, formatted once per millisecond. */
let isoMs = -1;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

export function openAccessLog(target: AccessLogTarget): AccessLog | null {
  if (target.kind === 'off') return null;
  if (target.kind === 'stdout') {
    const batch = new LineBatch((text) => process.stdout.write(text));
    return { write: (record) => batch.add(accessLogLine(record)), close: async () => batch.flush() };
  }
  mkdirSync(path.dirname(target.path), { recursive: true });
  // Appending keeps lines whole across restarts and lets logrotate's copytruncate work.
  const stream = createWriteStream(target.path, { flags: 'a', mode: 0o640 });
  stream.on('error', (error) => {
    logToStderr('error', 'access log write failed', { path: target.path, error: error.message });
  });
  const batch = new LineBatch((text) => stream.write(text));
  return {
    write: (record) => batch.add(accessLogLine(record)),
    close: () => {
      batch.flush();
      return new Promise((resolve) => stream.end(resolve));
    },
  };
}

/** A line waits at most this long for the lines after it (so a busy gateway writes ~50 times a second, not per request). */
export const BATCH_FLUSH_DELAY_MS = 20;
/** ...or until the batch reaches this size. */
const BATCH_FLUSH_CHARS = 64 * 1024;

/**
 * Collects lines and writes them in one call at most every BATCH_FLUSH_DELAY_MS: stdout on a pipe
 * is a synchronous write(2) per call, and each one wakes the reader (a container runtime, a log
 * shipper); one write per request was a measurable share of a small request's CPU. Lines appear
 * within BATCH_FLUSH_DELAY_MS of their request's end, in order; a crash loses at most those.
 */
export class LineBatch {
  private pending = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly writeText: (text: string) => void) {}

  add(line: string): void {
    this.pending += line;
    if (this.pending.length >= BATCH_FLUSH_CHARS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_FLUSH_DELAY_MS);
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.writeText(text);
  }
}
