import { describe, expect, it } from 'vitest';
import { S3Error } from '../src/errors.js';

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
