import { describe, expect, it } from 'vitest';
import type { S3RequestRecord } from '../../src/http/s3.js';
import { accessLogLine, LineBatch } from '../../src/observability/access-log.js';

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

describe('LineBatch (how access log lines reach stdout or the file)', () => {
  it('writes the lines of one event-loop turn in one call, in order, once the turn is over', async () => {
    const writes: string[] = [];
    const batch = new LineBatch((text) => writes.push(text));
    batch.add('a\n');
    batch.add('b\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n']);
    batch.add('c\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n', 'c\n']);
  });

  it('writes at once when the batch is large, and flush() writes what is pending (shutdown)', () => {
    const writes: string[] = [];
    const batch = new LineBatch((text) => writes.push(text));
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) batch.add(line);
    expect(writes.map((text) => text.length)).toEqual([64 * 1024]);
    batch.add('tail\n');
    batch.flush();
    expect(writes.at(-1)).toBe('tail\n');
    batch.flush();
    expect(writes).toHaveLength(2);
  });
});
