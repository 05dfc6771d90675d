/** CORS rules: validation, S3-shaped documents, and S3's matching (src/buckets/cors.ts, cors-match.ts). */
import { describe, expect, it } from 'vitest';
import { corsRulesProblem, CorsDocumentError, parseCorsDocument, type CorsRule } from '../../src/buckets/cors.js';
import { actualRequestHeaders, matchCorsRule, parseRequestHeaderList, preflightHeaders, wildcardMatches } from '../../src/buckets/cors-match.js';

describe('wildcards in origins and header names', () => {
  const originAllowed = (pattern: string, origin: string) => matchCorsRule([{ allowedOrigins: [pattern], allowedMethods: ['GET'] }], origin, 'GET') !== null;
  const headerAllowed = (pattern: string, header: string) =>
    matchCorsRule([{ allowedOrigins: ['*'], allowedMethods: ['PUT'], allowedHeaders: [pattern] }], 'https://a.example', 'PUT', [header.toLowerCase()]) !== null;

  it.each([
    ['*', 'https://anything.example', true],
    ['https://app.example.com', 'https://app.example.com', true],
    ['https://app.example.com', 'HTTPS://APP.EXAMPLE.COM', true],
    ['https://app.example.com', 'https://app.example.com.evil.net', false],
    ['https://*.example.com', 'https://a.b.example.com', true],
    ['https://*.example.com', 'https://example.com', false],
    // The wildcard stands for host name characters only: these hosts are not under example.com.
    ['https://*.example.com', 'https://evil.net/.example.com', false],
    ['https://*.example.com', 'https://evil.net?.example.com', false],
    ['https://*.example.com', 'https://evil.net#.example.com', false],
    ['https://*.example.com', 'https://user@evil.net.example.com', false],
    ['https://*.example.com', 'https://evil.net:443.example.com', false],
    ['http://localhost:*', 'http://localhost:5173', true],
    ['http://localhost:*', 'http://localhost.evil.net', false],
  ])('origin %s vs %s -> %s', (pattern, origin, expected) => {
    expect(originAllowed(pattern, origin)).toBe(expected);
  });

  it.each([
    ['x-amz-*', 'X-Amz-Date', true],
    ['x-amz-*', 'content-type', false],
    ['*', 'anything-at-all', true],
  ])('header %s vs %s -> %s', (pattern, header, expected) => {
    expect(headerAllowed(pattern, header)).toBe(expected);
  });

  it('wildcardMatches uses the given character class for the run the star stands for', () => {
    expect(wildcardMatches('a*c', 'abbbc', /^b*$/)).toBe(true);
    expect(wildcardMatches('a*c', 'ab/bc', /^b*$/)).toBe(false);
  });
});

describe('matchCorsRule', () => {
  const rules: CorsRule[] = [
    {
      allowedOrigins: ['https://app.example.com'],
      allowedMethods: ['PUT', 'POST'],
      allowedHeaders: ['content-type', 'x-amz-*'],
      exposeHeaders: ['ETag'],
      maxAgeSeconds: 600,
    },
    { allowedOrigins: ['*'], allowedMethods: ['GET', 'HEAD'] },
  ];

  it('takes the first rule matching origin, method and every requested header', () => {
    const match = matchCorsRule(rules, 'https://app.example.com', 'PUT', ['content-type', 'x-amz-meta-a']);
    expect(match?.rule).toBe(rules[0]);
    expect(match?.allowOrigin).toBe('https://app.example.com');
    expect(matchCorsRule(rules, 'https://app.example.com', 'GET')?.rule).toBe(rules[1]);
    expect(matchCorsRule(rules, 'https://other.example', 'GET')?.allowOrigin).toBe('*');
  });

  it('refuses unknown origins, methods and headers', () => {
    expect(matchCorsRule(rules, 'https://other.example', 'PUT')).toBeNull();
    expect(matchCorsRule(rules, 'https://app.example.com', 'DELETE')).toBeNull();
    expect(matchCorsRule(rules, 'https://app.example.com', 'PUT', ['authorization'])).toBeNull();
    // A rule without allowedHeaders allows no requested header.
    expect(matchCorsRule(rules, 'https://x.example', 'GET', ['range'])).toBeNull();
  });

  it('builds S3-like response headers', () => {
    const match = matchCorsRule(rules, 'https://app.example.com', 'PUT', ['content-type'])!;
    expect(preflightHeaders(match, ['content-type'])).toEqual({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'PUT, POST',
      'access-control-allow-headers': 'content-type',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'ETag',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
    });
    const everyone = actualRequestHeaders(matchCorsRule(rules, 'https://x.example', 'GET')!);
    expect(everyone['access-control-allow-origin']).toBe('*');
    expect(everyone['access-control-allow-credentials']).toBeUndefined();
    expect(everyone['access-control-expose-headers']).toBeUndefined();
  });

  it('parses Access-Control-Request-Headers', () => {
    expect(parseRequestHeaderList(' Content-Type ,X-Amz-Date,, ')).toEqual(['content-type', 'x-amz-date']);
    expect(parseRequestHeaderList(undefined)).toEqual([]);
  });
});

describe('CORS rule documents', () => {
  it('accepts keygate rules, {"rules": …} and S3 CORSConfiguration JSON', () => {
    const keygate = [{ allowedOrigins: ['*'], allowedMethods: ['GET'] }];
    expect(parseCorsDocument(keygate)).toEqual(keygate);
    expect(parseCorsDocument({ rules: keygate })).toEqual(keygate);
    expect(
      parseCorsDocument({
        CORSRules: [
          { ID: 'web', AllowedOrigins: ['https://a.example'], AllowedMethods: ['PUT'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 60 },
        ],
      }),
    ).toEqual([
      { id: 'web', allowedOrigins: ['https://a.example'], allowedMethods: ['PUT'], allowedHeaders: ['*'], exposeHeaders: ['ETag'], maxAgeSeconds: 60 },
    ]);
  });

  it.each([
    [{ CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['GET'], Extra: 1 }] }, /Unknown CORSRule member "Extra"/],
    [{ something: [] }, /Send a list of CORS rules/],
    [[{ allowedOrigins: ['*'], allowedMethods: ['get'] }], /"get" is not an allowed method/],
    [[{ allowedOrigins: ['https://*.*.example.com'], allowedMethods: ['GET'] }], /more than one "\*"/],
    [[{ allowedOrigins: ['*'], allowedMethods: ['GET'], exposeHeaders: ['bad header'] }], /not a header name/],
    [[{ allowedOrigins: ['*'], allowedMethods: ['GET'], colour: 'red' }], /unknown field "colour"/],
    [[{ allowedOrigins: ['https://a.example\u0000.evil'], allowedMethods: ['GET'] }], /control or non-ASCII/],
    [[{ allowedOrigins: ['https://bücher.example'], allowedMethods: ['GET'] }], /punycode/],
    [[{ allowedOrigins: ['*'], allowedMethods: ['GET'], allowedHeaders: ['x-\u007f'] }], /control or non-ASCII/],
  ])('refuses %j', (document, message) => {
    expect(() => parseCorsDocument(document)).toThrow(CorsDocumentError);
    expect(() => parseCorsDocument(document)).toThrow(message);
  });

  it('caps the number of rules at S3’s 100', () => {
    expect(corsRulesProblem(Array.from({ length: 101 }, () => ({ allowedOrigins: ['*'], allowedMethods: ['GET'] })))).toMatch(/at most 100/);
  });
});
