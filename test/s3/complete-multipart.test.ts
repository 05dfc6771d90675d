import { describe, expect, it } from 'vitest';
import { parseCompleteMultipartUpload } from '../../src/s3/complete-multipart.js';
import { S3Error } from '../../src/errors.js';

const part = (number: string | number, etag = '"etag"', extra = '') => `<Part><PartNumber>${number}</PartNumber><ETag>${etag}</ETag>${extra}</Part>`;
const doc = (...parts: string[]) => `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.join('')}</CompleteMultipartUpload>`;

function refused(xml: string): S3Error {
  try {
    parseCompleteMultipartUpload(xml);
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return error as S3Error;
  }
  throw new Error(`accepted: ${xml}`);
}

describe('parseCompleteMultipartUpload', () => {
  it('reads the parts in order with their ETags and checksums', () => {
    const parts = parseCompleteMultipartUpload(doc(part(1, '&quot;a1&quot;', '<ChecksumCRC32>AAAAAA==</ChecksumCRC32>'), part(3, '"b3"')));
    expect(parts).toEqual([
      { partNumber: 1, etag: '"a1"', checksums: { ChecksumCRC32: 'AAAAAA==' } },
      { partNumber: 3, etag: '"b3"', checksums: {} },
    ]);
  });

  it.each([
    ['another root', '<CompleteUpload>' + part(1) + '</CompleteUpload>', 'MalformedXML'],
    ['no parts', doc(), 'MalformedXML'],
    ['text instead of parts', '<CompleteMultipartUpload>parts</CompleteMultipartUpload>', 'MalformedXML'],
    ['a non-numeric part number', doc(part('one')), 'MalformedXML'],
    ['a missing part number', doc('<Part><ETag>"e"</ETag></Part>'), 'MalformedXML'],
    ['two part numbers in one part', doc('<Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>"e"</ETag></Part>'), 'MalformedXML'],
    ['part number 0', doc(part(0)), 'InvalidArgument'],
    ['part number 10001', doc(part(10001)), 'InvalidArgument'],
    ['an empty ETag', doc(part(1, '')), 'MalformedXML'],
    ['an ETag element with children', doc(part(1, '<x>y</x>')), 'MalformedXML'],
    ['a checksum with children', doc(part(1, '"e"', '<ChecksumSHA256><x/></ChecksumSHA256>')), 'MalformedXML'],
    ['descending parts', doc(part(2), part(1)), 'InvalidPartOrder'],
    ['a part number again after a higher one', doc(part(1), part(2), part(1)), 'InvalidPartOrder'],
    ['malformed XML', '<CompleteMultipartUpload><Part>', 'MalformedXML'],
  ])('refuses %s with %s (400)', (_name, xml, code) => {
    const error = refused(xml);
    expect(error.code).toBe(code);
    expect(error.status).toBe(400);
  });

  it('passes a part number listed again right after itself to the upstream (not out of ascending order)', () => {
    const parts = parseCompleteMultipartUpload(doc(part(1, '"first"'), part(1, '"again"'), part(2)));
    expect(parts.map((p) => [p.partNumber, p.etag])).toEqual([
      [1, '"first"'],
      [1, '"again"'],
      [2, '"etag"'],
    ]);
  });

  it('refuses more than 10000 parts', () => {
    const parts = Array.from({ length: 10_001 }, (_, i) => part(i + 1));
    expect(refused(doc(...parts)).code).toBe('MalformedXML');
  });
});
