import { describe, expect, it, vi } from 'vitest';
import type { S3RequestRecord } from '../../src/http/s3.js';
import { accessLogLine, BATCH_FLUSH_DELAY_MS, LineBatch } from '../../src/observability/access-log.js';

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

  it('is exactly what JSON.stringify makes of the record, for hostile keys, ids and addresses too', () => {
    const time = new Date('2026-12-03T10:00:00.123Z');
    const reference = (r: S3RequestRecord) =>
      `${JSON.stringify({
        time: time.toISOString(),
        type: 'access',
        requestId: r.requestId,
        remoteAddress: r.remoteAddress,
        accessKeyId: r.accessKeyId,
        method: r.method,
        operation: r.operation,
        bucket: r.bucket,
        key: r.objectKey,
        status: r.status,
        errorCode: r.errorCode,
        bytesIn: r.bytesIn,
        bytesOut: r.bytesOut,
        durationMs: Math.round(r.durationMs * 1000) / 1000,
        aborted: r.aborted,
      })}\n`;
    const hostile = [
      '',
      'plain',
      'a"b',
      'back\\slash',
      'tab\there',
      'nl\nline',
      '\u0000\u001f\u007f',
      'é ü 漢字 🎉',
      '\ud800 lone',
      '\u2028\u2029',
      '</script>',
      '{"injected":1}',
    ];
    for (const text of hostile) {
      const variant: S3RequestRecord = {
        ...record,
        requestId: text,
        objectKey: text,
        bucket: text,
        remoteAddress: text,
        accessKeyId: text,
        operation: text,
        errorCode: text,
        method: text,
        aborted: true,
      };
      expect(accessLogLine(variant, time)).toBe(reference(variant));
      expect(JSON.parse(accessLogLine(variant, time)).key).toBe(JSON.parse(reference(variant)).key);
    }
    const empty: S3RequestRecord = {
      ...record,
      operation: null,
      bucket: null,
      objectKey: null,
      accessKeyId: null,
      remoteAddress: null,
      durationMs: Number.NaN,
    };
    expect(accessLogLine(empty, time)).toBe(reference(empty));
    expect(accessLogLine({ ...record, durationMs: 0.0004, bytesIn: 0 }, time)).toBe(reference({ ...record, durationMs: 0.0004, bytesIn: 0 }));
  });

  it('stamps the current time when none is given', () => {
    const before = Date.now();
    const stamped = Date.parse((JSON.parse(accessLogLine(record)) as { time: string }).time);
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(Date.now());
  });
});

describe('LineBatch (how access log lines reach stdout or the file)', () => {
  it('writes the lines that arrive within BATCH_FLUSH_DELAY_MS in one call, in order, once that time is over', async () => {
    vi.useFakeTimers();
    try {
      const writes: string[] = [];
      const batch = new LineBatch((text) => writes.push(text));
      batch.add('a\n');
      await vi.advanceTimersByTimeAsync(BATCH_FLUSH_DELAY_MS - 1);
      batch.add('b\n');
      expect(writes).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(writes).toEqual(['a\nb\n']);
      batch.add('c\n');
      await vi.advanceTimersByTimeAsync(BATCH_FLUSH_DELAY_MS);
      expect(writes).toEqual(['a\nb\n', 'c\n']);
      await vi.advanceTimersByTimeAsync(10 * BATCH_FLUSH_DELAY_MS);
      expect(writes).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
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
