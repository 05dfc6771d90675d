/** Unit tests of the canonical-request building blocks (S3 flavour of SigV4). */
import { describe, expect, it } from 'vitest';
import {
  buildCanonicalRequest,
  canonicalHeaderValue,
  canonicalHeadersBlock,
  canonicalQueryString,
  canonicalVariants,
  splitRawQuery,
  verbatimQueryString,
} from '../../src/sigv4/canonical.js';
import { formatAmzDate, parseAmzDate, parseHttpDate } from '../../src/sigv4/dates.js';
import { headersFromRawHeaders } from '../../src/sigv4/headers.js';
import { canonicalPath, canonicalQueryComponent, decodeQueryComponent, uriEncode } from '../../src/sigv4/uri-encoding.js';

describe('canonicalPath', () => {
  it.each([
    ['', '/'],
    ['/', '/'],
    ['/bucket/key', '/bucket/key'],
    ['/test$file.text', '/test%24file.text'],
    ['/a%20b', '/a%20b'],
    ['/a b', '/a%20b'],
    ['/%7E/%7e/~', '/~/~/~'], // escaped unreserved chars canonicalize to the bare char
    ['/%41%2d', '/A-'],
    ['/a%2fb/c%2Fd', '/a/b/c/d'], // S3 decodes the whole path, so an escaped '/' is a '/'
    ['/a+b', '/a%2Bb'], // '+' in a path is a literal plus
    ['/a%2bb', '/a%2Bb'],
    ['/%e1%88%b4', '/%E1%88%B4'], // escapes are upper-cased
    ['/\u00e1\u0088\u00b4', '/%E1%88%B4'], // raw UTF-8 bytes as Node's latin1 string
    ['/%zz/%4', '/%25zz/%254'], // malformed escapes stay literal
    ['//a//b/../c/./', '//a//b/../c/./'], // no normalization
    ["/!'()*", '/%21%27%28%29%2A'],
    ['/=&?#;:@,', '/%3D%26%3F%23%3B%3A%40%2C'],
  ])('%j -> %j', (raw, canonical) => {
    expect(canonicalPath(raw)).toBe(canonical);
  });

  it('treats chars above U+00FF as UTF-8 text', () => {
    expect(canonicalPath('/ሴ/😀')).toBe('/%E1%88%B4/%F0%9F%98%80');
  });

  it('returns an already canonical path unchanged (the hot path)', () => {
    const raw = '/bucket/some/key-with_unreserved.chars~and%20escapes%E2%82%AC';
    expect(canonicalPath(raw)).toBe(raw);
  });
});

describe('query canonicalization', () => {
  it('sorts by encoded key, then value; a key alone becomes "key="', () => {
    expect(canonicalQueryString(splitRawQuery('Param-3=Value3&Param=Value2&%E1%88%B4=Value1'))).toBe('%E1%88%B4=Value1&Param=Value2&Param-3=Value3');
    expect(canonicalQueryString(splitRawQuery('b=2&a=3&a=1&c'))).toBe('a=1&a=3&b=2&c=');
    expect(canonicalQueryString(splitRawQuery('uploads'))).toBe('uploads=');
  });

  it('form-decodes components ("+" is a space) and re-encodes them', () => {
    expect(canonicalQueryComponent('a+b')).toBe('a%20b');
    expect(canonicalQueryComponent('a%2bb')).toBe('a%2Bb');
    expect(canonicalQueryComponent('a/b')).toBe('a%2Fb'); // '/' is encoded in query components
    expect(canonicalQueryComponent('%7e')).toBe('~');
    expect(canonicalQueryComponent('é')).toBe('%E9');
    expect(decodeQueryComponent('AKID%2F20130524%2Fus-east-1')).toBe('AKID/20130524/us-east-1');
    expect(decodeQueryComponent('a+b%C3%A9')).toBe('a bé');
  });

  it('ignores empty elements and can leave parameters out', () => {
    const params = splitRawQuery('&a=1&&X-Amz-Signature=abc&b=&');
    expect(params).toHaveLength(3);
    expect(canonicalQueryString(params, new Set([1]))).toBe('a=1&b=');
    expect(verbatimQueryString(splitRawQuery('b=%7e&a=x+y'))).toBe('a=x+y&b=%7e');
  });

  it('encodes with uriEncode like the SDKs do', () => {
    expect(uriEncode('a b/c~!')).toBe('a%20b%2Fc~%21');
    expect(uriEncode('a b/c', true)).toBe('a%20b/c');
  });
});

describe('header canonicalization', () => {
  it('trims, collapses inner spaces and tabs, joins repeated values with ","', () => {
    expect(canonicalHeaderValue('  a   b \t c  ')).toBe('a b c');
    expect(canonicalHeaderValue('"a   b   c"')).toBe('"a b c"'); // quotes do not protect spaces
    expect(canonicalHeaderValue(['value2', ' value1 '])).toBe('value2,value1');
    expect(canonicalHeaderValue(undefined)).toBe('');
    expect(canonicalHeaderValue('plain')).toBe('plain');
  });

  it("collapses other whitespace only under aws4's rule", () => {
    expect(canonicalHeaderValue('a\u00a0\u00a0b', 'spaces-and-tabs')).toBe('a\u00a0\u00a0b');
    expect(canonicalHeaderValue('a\u00a0\u00a0b', 'all-whitespace')).toBe('a b');
  });

  it('builds the headers block in SignedHeaders order', () => {
    expect(canonicalHeadersBlock({ host: 'h', 'x-amz-date': 'd' }, ['host', 'x-amz-date'])).toBe('host:h\nx-amz-date:d\n');
    expect(
      buildCanonicalRequest({
        method: 'GET',
        canonicalUri: '/',
        canonicalQuery: '',
        canonicalHeaders: 'host:h\n',
        signedHeaders: 'host',
        payloadHash: 'UNSIGNED-PAYLOAD',
      }),
    ).toBe('GET\n/\n\nhost:h\n\nhost\nUNSIGNED-PAYLOAD');
  });

  it('headersFromRawHeaders keeps every value of repeated headers', () => {
    expect(headersFromRawHeaders(['Host', 'h', 'My-Header', 'a', 'my-header', 'b'])).toEqual({ host: ['h'], 'my-header': ['a', 'b'] });
  });
});

describe('canonicalVariants (fallback readings tried after a mismatch)', () => {
  it('offers nothing beyond the primary reading for a canonical request', () => {
    expect(canonicalVariants('/bucket/key', splitRawQuery('a=1'), undefined, { host: 'h' }, ['host'])).toEqual([]);
  });

  it('offers the verbatim path, never a plus-as-space reading', () => {
    const uris = canonicalVariants('/a+b/%7e', [], undefined, { host: 'h' }, ['host']).map((v) => v.uri);
    expect(uris).toEqual(['/a+b/%7e']); // the primary reading '/a%2Bb/~' was already tried
  });

  it('offers the all-whitespace rule only when a signed header has exotic whitespace', () => {
    const rules = canonicalVariants('/', [], undefined, { host: 'h', 'x-amz-meta-a': 'a\u00a0b' }, ['host', 'x-amz-meta-a']).map((v) => v.whitespace);
    expect(rules).toContain('all-whitespace');
  });
});

describe('dates', () => {
  it('parses only real ISO 8601 basic timestamps', () => {
    expect(parseAmzDate('20130524T000000Z')?.toISOString()).toBe('2013-05-24T00:00:00.000Z');
    for (const bad of ['20130524T000000', '2013-05-24T00:00:00Z', '20130231T000000Z', '20130524T250000Z', '20130524T006000Z', '']) {
      expect(parseAmzDate(bad), bad).toBeUndefined();
    }
    expect(formatAmzDate(new Date('2013-05-24T01:02:03.456Z'))).toBe('20130524T010203Z');
  });

  it('parses the HTTP Date header fallback', () => {
    expect(parseHttpDate('Fri, 24 May 2013 00:00:00 GMT')?.toISOString()).toBe('2013-05-24T00:00:00.000Z');
    expect(parseHttpDate('24 May 2013')).toBeUndefined();
  });
});
