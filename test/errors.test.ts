import { describe, expect, it } from 'vitest';
import { S3Error, escapeXml } from '../src/errors.js';

describe('S3 error catalog', () => {
  it.each([
    ['AccessForbidden', 403],
    ['BadRequest', 400],
    ['InvalidPolicyDocument', 400],
    ['MalformedPOSTRequest', 400],
    ['MaxPostPreDataLengthExceededError', 400],
  ] as const)('knows %s (%i) with a default message, rendered as an <Error> document', (code, status) => {
    const error = new S3Error(code);
    expect(error.status).toBe(status);
    expect(error.message).not.toBe('');
    const xml = error.toXml('/bucket', 'req-1');
    expect(xml).toContain(`<Error><Code>${code}</Code><Message>`);
    expect(xml).toContain('<Resource>/bucket</Resource><RequestId>req-1</RequestId></Error>');
  });
});

describe('escapeXml', () => {
  it('escapes markup and encodes CR/LF', () => {
    expect(escapeXml(`a&b<c>"d'\r\n`)).toBe('a&amp;b&lt;c&gt;&quot;d&apos;&#xD;&#xA;');
  });

  it('replaces what XML 1.0 cannot carry with U+FFFD, keeping tabs and paired surrogates', () => {
    expect(escapeXml('\x00\x01\x08\x0B\x0C\x1F\uFFFE\uFFFF')).toBe('\uFFFD'.repeat(8));
    expect(escapeXml('lone \uD800 and \uDC00 end\uD83D')).toBe('lone \uFFFD and \uFFFD end\uFFFD');
    expect(escapeXml('tab\there ✓ 😀')).toBe('tab\there ✓ 😀');
  });

  it('keeps every error document parseable whatever it echoes', () => {
    const xml = new S3Error('InvalidArgument', 'bad \x01 value').toXml('/bucket/\x00key', 'REQ');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(xml).not.toMatch(/[\x00-\x08\x0B\x0C\x0E-\x1F]/);
    expect(xml).toContain('bad \uFFFD value');
  });
});
