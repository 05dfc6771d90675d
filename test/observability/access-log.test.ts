import { describe, expect, it } from 'vitest';
import type { S3RequestRecord } from '../../src/http/s3.js';
import { accessLogLine } from '../../src/observability/access-log.js';

const record: S3RequestRecord = {
  requestId: 'ABCDEF0123456789',
  method: 'PUT',
  operation: 'PutObject',
  bucket: 'photos',
  objectKey: 'a "quoted"\nkey',
  accessKeyId: 'rs_ak_live_0123456789',
  status: 200,
  errorCode: null,
  bytesIn: 1234,
  bytesOut: 210,
  durationMs: 12.3456789,
  aborted: false,
  remoteAddress: '127.0.0.1',
};

describe('accessLogLine', () => {
  it('is one JSON object on one line with stable field names', () => {
    const line = accessLogLine(record, new Date('2026-11-23T10:00:00Z'));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      time: '2026-11-23T10:00:00.000Z',
      type: 'access',
      requestId: 'ABCDEF0123456789',
      remoteAddress: '127.0.0.1',
      accessKeyId: 'rs_ak_live_0123456789',
      method: 'PUT',
      operation: 'PutObject',
      bucket: 'photos',
      key: 'a "quoted"\nkey',
      status: 200,
      errorCode: null,
      bytesIn: 1234,
      bytesOut: 210,
      durationMs: 12.346,
      aborted: false,
    });
  });
});
