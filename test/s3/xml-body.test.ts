/**
 * Request XML bodies are read as they arrive and refuse what is not (safe) XML of the expected
 * shape: DTDs and entity bombs, undefined entity references, several roots, trailing text,
 * characters XML cannot carry, unexpected elements. Well-formed documents keep their values
 * byte-exact, however the body is split into chunks.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { DELETE_REQUEST_SHAPE } from '../../src/s3/delete-objects.js';
import { MAX_XML_BODY_BYTES, parseXmlBody as parseShaped, readXmlBody, XmlBodyReader, type XmlBody } from '../../src/s3/xml-body.js';

/** The <Delete> shape, returned in the form the assertions below compare. */
function parseXmlBody(text: string): { Delete: { Object: Array<Record<string, string>> } & Record<string, unknown> } {
  const document: XmlBody = parseShaped(text, DELETE_REQUEST_SHAPE);
  return { Delete: { Object: document.entries, ...document.rootFields } };
}

function malformed(text: string): S3Error {
  try {
    parseXmlBody(text);
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return error as S3Error;
  }
  throw new Error(`accepted: ${text.slice(0, 80)}`);
}

const BILLION_LAUGHS =
  '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
  Array.from({ length: 8 }, (_, i) => `<!ENTITY lol${i + 2} "${`&lol${i === 0 ? '' : i + 1};`.repeat(10)}">`).join('') +
  ']><Delete><Object><Key>&lol9;</Key></Object></Delete>';

describe('parseXmlBody', () => {
  it('keeps keys byte-exact: spaces, CR/LF references, predefined entities, CDATA, unicode', () => {
    const parsed = parseXmlBody(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><!-- a & comment -->' +
        '<Object><Key> a&#xD;&#xA;b&amp;&lt;&gt;&quot;&apos;&#65;&#x1F600; </Key></Object><Object><Key><![CDATA[x&y<z]]></Key></Object></Delete>',
    );
    expect(parsed.Delete).toEqual({ Object: [{ Key: ' a\r\nb&<>"\'A😀 ' }, { Key: 'x&y<z' }] });
  });

  it.each([
    ['a billion-laughs DTD', BILLION_LAUGHS, /document type declarations/],
    ['an external entity', '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>', /document type/],
    ['an undefined entity', '<Delete><Object><Key>&xxe;</Key></Object></Delete>', /not an XML reference/],
    ['an HTML-only entity', '<Delete><Object><Key>&nbsp;</Key></Object></Delete>', /not an XML reference/],
    ['a bare ampersand', '<Delete><Object><Key>a & b</Key></Object></Delete>', /escape a literal "&"/],
    ['a reference without ";"', '<Delete><Object><Key>&amp</Key></Object></Delete>', /not an XML reference/],
    ['a NUL character reference', '<Delete><Object><Key>&#0;</Key></Object></Delete>', /not an XML reference|character XML does not allow/],
    ['a surrogate character reference', '<Delete><Object><Key>&#xD800;</Key></Object></Delete>', /not an XML reference|character XML does not allow/],
    ['an out-of-range character reference', '<Delete><Object><Key>&#99999999;</Key></Object></Delete>', /not an XML reference/],
    [
      'an entity hidden behind a comment that looks like CDATA',
      '<!-- <![CDATA[ --><Delete><Object><Key>&x;</Key></Object></Delete><!-- ]]> -->',
      /not an XML reference/,
    ],
    ['a raw control character', '<Delete><Object><Key>a\u0001b</Key></Object></Delete>', /control character/],
    ['two root elements', '<Delete><Object><Key>a</Key></Object></Delete><Delete/>', /exactly one root/],
    ['two different roots', '<Delete><Object><Key>a</Key></Object></Delete><Other/>', /exactly one root/],
    ['text after the root', '<Delete><Object><Key>a</Key></Object></Delete>trailing', /not well-formed|text after its root/],
    ['text after an empty root', '<Delete/>trailing', /text after/],
    ['a "<" in the XML declaration', '<?xml version="1.<0"?><Delete/>', /XML declaration is malformed/],
    ['an XML declaration with an unknown pseudo-attribute', '<?xml version="1.0" charset="x"?><Delete/>', /XML declaration is malformed/],
    ['an XML declaration after the start', ' <?xml version="1.0"?><Delete/>', /only appear at the very start/],
    ['a "<" in an attribute value', '<Delete xmlns="http://x<y"><Object><Key>a</Key></Object></Delete>', /contains "<"|malformed tag or a stray "<"/],
    ['a stray "<" in text', '<Delete><Object><Key>a < b</Key></Object></Delete>', /stray "<"/],
    ['an unterminated comment', '<Delete><!-- open</Delete>', /ends early/],
    ['an unclosed element', '<Delete><Object><Key>a</Key></Object>', /not well-formed/],
    ['an empty body', '', /not well-formed/],
    ['no element at all', '<?xml version="1.0"?>', /not well-formed/],
  ])('refuses %s as MalformedXML', (_name, text, message) => {
    const error = malformed(text);
    expect(error.code).toBe('MalformedXML');
    expect(error.status).toBe(400);
    expect(error.message).toMatch(message);
  });

  it('refuses a valid document with a "<" or "&" inserted anywhere, or cut short anywhere', () => {
    const valid =
      '<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><!-- c --><Object><Key>k&amp;1</Key></Object><Quiet>false</Quiet></Delete>';
    expect(parseXmlBody(valid).Delete).toEqual({ Object: [{ Key: 'k&1' }], Quiet: 'false' });
    const commentText = valid.indexOf('<!--') + 4;
    for (let at = 0; at <= valid.length; at++) {
      // Inside a comment both are plain text.
      const inComment = at >= commentText && at <= valid.indexOf('-->');
      for (const inserted of inComment ? [] : ['<', '&']) {
        expect(() => parseXmlBody(valid.slice(0, at) + inserted + valid.slice(at)), `${inserted} at ${at}`).toThrow(S3Error);
      }
      if (at < valid.length) expect(() => parseXmlBody(valid.slice(0, at)), `cut at ${at}`).toThrow(S3Error);
    }
  });

  it('accepts a byte order mark, single-quoted declarations and processing instructions', () => {
    expect(parseXmlBody("\uFEFF<?xml version='1.0' standalone='yes'?><?app data?><Delete><Object><Key>k</Key></Object></Delete>").Delete).toEqual({
      Object: [{ Key: 'k' }],
    });
  });

  it('refuses bodies over the cap before parsing', () => {
    const error = malformed(`<Delete>${' '.repeat(MAX_XML_BODY_BYTES)}</Delete>`);
    expect(error.code).toBe('MaxMessageLengthExceeded');
  });

  it('reads a body the same however it is split, even inside a multi-byte character or a reference', () => {
    const text = '<?xml version="1.0"?><Delete><Object><Key>a&amp;b ✓ 😀 &#x1F600;</Key><VersionId>v</VersionId></Object><Quiet>true</Quiet></Delete>';
    const whole = parseShaped(text, DELETE_REQUEST_SHAPE);
    const bytes = Buffer.from(text);
    for (const size of [1, 2, 3, 5, 7]) {
      const reader = new XmlBodyReader(DELETE_REQUEST_SHAPE);
      for (let at = 0; at < bytes.length; at += size) reader.write(bytes.subarray(at, at + size));
      expect(reader.end(), `pieces of ${size}`).toEqual(whole);
    }
    expect(whole.entries).toEqual([{ Key: 'a&b ✓ 😀 😀', VersionId: 'v' }]);
  });

  it('stops at the first entry over the limit without reading the rest of the stream', async () => {
    let pulled = 0;
    const entry = Buffer.from('<Object><Key>k</Key></Object>');
    async function* body() {
      yield Buffer.from('<Delete>');
      for (let i = 0; i < 5000; i++) {
        pulled++;
        yield entry;
      }
      yield Buffer.from('</Delete>');
    }
    await expect(readXmlBody(Readable.from(body()), DELETE_REQUEST_SHAPE, { heldFor: 'test-key' })).rejects.toMatchObject({
      code: 'MalformedXML',
      message: expect.stringContaining('at most 1000'),
    });
    expect(pulled).toBeLessThan(1100);
  });

  it('refuses elements the document does not have, and fields given twice', () => {
    expect(malformed('<Delete><Object><Key>a</Key><Extra>x</Extra></Object></Delete>').message).toMatch(/<Extra> is not expected/);
    expect(malformed('<Delete><Quiet>true</Quiet><Quiet>false</Quiet><Object><Key>a</Key></Object></Delete>').message).toMatch(/appears twice/);
    expect(malformed('<Delete><Object><Object><Key>a</Key></Object></Object></Delete>').message).toMatch(/not expected/);
  });

  it('bounds what sax would hold on the heap: attributes, long texts, tags and comments, long fields', () => {
    const attributes = Array.from({ length: 9 }, (_, i) => `a${i}=""`).join(' ');
    expect(malformed(`<Delete ${attributes}><Object><Key>k</Key></Object></Delete>`).message).toMatch(/more than 8 attributes/);
    expect(malformed(`<Delete><Object><Key>${'k'.repeat(17 * 1024)}</Key></Object></Delete>`).message).toMatch(/longer than 16384 characters/);
    expect(malformed(`<Delete><!--${'c'.repeat(17 * 1024)}--><Object><Key>k</Key></Object></Delete>`).message).toMatch(/longer than 16384 characters/);
    expect(malformed(`<Delete><Object><Key>${'k&amp;'.repeat(2100)}</Key></Object></Delete>`).message).toMatch(/<Key> is longer than 4096 characters/);
    // A key of 1024 characters written as character references (the longest S3 allows) still reads.
    expect(parseXmlBody(`<Delete><Object><Key>${'&#x1F600;'.repeat(512)}</Key></Object></Delete>`).Delete.Object[0]!.Key).toHaveLength(1024);
  });

  it('finds the stretches between < and > in linear time, however they are split', () => {
    const reader = new XmlBodyReader(DELETE_REQUEST_SHAPE);
    reader.write(Buffer.from('<Delete><Object><Key>'));
    // 16 KiB of text in 1 KiB pieces: the limit counts across pieces.
    expect(() => {
      for (let i = 0; i < 17; i++) reader.write(Buffer.alloc(1024, 'k'));
    }).toThrow(/longer than 16384/);
  });
});
