import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/s3/errors.js';
import { extraS3Error } from '../../src/s3/extra-errors.js';

describe('S3 error catalog', () => {
  it.each([
    ['AccessForbidden', 403],
    ['BadRequest', 400],
    ['InvalidPolicyDocument', 400],
    ['MalformedPOSTRequest', 400],
    ['MaxPostPreDataLengthExceeded', 400],
  ] as const)('knows %s (%i) with a default message, rendered as an <Error> document', (code, status) => {
    const error = new S3Error(code);
    expect(error.status).toBe(status);
    expect(error.message).not.toBe('');
    const xml = error.toXml('/bucket', 'req-1');
    expect(xml).toContain(`<Error><Code>${code}</Code><Message>`);
    expect(xml).toContain('<Resource>/bucket</Resource><RequestId>req-1</RequestId></Error>');
  });

  it('keeps the transition shim equivalent to the catalog (code, status, details, headers)', () => {
    const viaShim = extraS3Error('AccessForbidden', 'CORSResponse: nope', { details: { Method: 'PUT' }, headers: { vary: 'Origin' } });
    const direct = new S3Error('AccessForbidden', 'CORSResponse: nope', { details: { Method: 'PUT' }, headers: { vary: 'Origin' } });
    expect(viaShim).toBeInstanceOf(S3Error);
    expect({ ...viaShim, message: viaShim.message, status: viaShim.status }).toEqual({ ...direct, message: direct.message, status: direct.status });
    expect(viaShim.toXml('/b', 'r')).toBe(direct.toXml('/b', 'r'));
  });
});
