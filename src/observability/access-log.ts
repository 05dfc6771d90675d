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

/** The line for one request. Field names are stable: log pipelines parse them. */
export function accessLogLine(record: S3RequestRecord, time: Date = new Date()): string {
  return `${JSON.stringify({
    time: time.toISOString(),
    type: 'access',
    requestId: record.requestId,
    remoteAddress: record.remoteAddress,
    accessKeyId: record.accessKeyId,
    method: record.method,
    operation: record.operation,
    bucket: record.bucket,
    key: record.objectKey,
    status: record.status,
    errorCode: record.errorCode,
    bytesIn: record.bytesIn,
    bytesOut: record.bytesOut,
    durationMs: Math.round(record.durationMs * 1000) / 1000,
    aborted: record.aborted,
  })}\n`;
}

export function openAccessLog(target: AccessLogTarget): AccessLog | null {
  if (target.kind === 'off') return null;
  if (target.kind === 'stdout') {
    return { write: (record) => process.stdout.write(accessLogLine(record)), close: async () => undefined };
  }
  mkdirSync(path.dirname(target.path), { recursive: true });
  // Appending keeps lines whole across restarts and lets logrotate's copytruncate work.
  const stream = createWriteStream(target.path, { flags: 'a', mode: 0o640 });
  stream.on('error', (error) => {
    logToStderr('error', 'access log write failed', { path: target.path, error: error.message });
  });
  return {
    write: (record) => {
      stream.write(accessLogLine(record));
    },
    close: () => new Promise((resolve) => stream.end(resolve)),
  };
}
