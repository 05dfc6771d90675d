/**
 * XML in and out. Requests bodies are parsed with settings that keep values byte-exact (object
 * keys may have leading zeros, surrounding spaces, CR/LF), and responses are built from escaped
 * strings so nothing a client sent can break the document.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { S3Error, escapeXml } from './errors.js';

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** S3 itself rejects DeleteObjects bodies over ~2 MB; we cap every parsed XML body at the same size. */
export const MAX_XML_BODY_BYTES = 2 * 1024 * 1024;

/** Parses an S3 request body. `repeated` names elements that are always arrays (e.g. `Object`). */
export function parseXmlBody(text: string, repeated: readonly string[] = []): Record<string, unknown> {
  if (Buffer.byteLength(text) > MAX_XML_BODY_BYTES) {
    throw new S3Error('MaxMessageLengthExceeded', `XML request bodies are limited to ${MAX_XML_BODY_BYTES} bytes.`);
  }
  rejectUnsafeMarkup(text);
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new S3Error('MalformedXML', `The XML you provided was not well-formed: ${valid.err.msg} (line ${valid.err.line}).`);
  }
  // The validator and parser ignore text after the root element; XML does not allow it.
  if (!/>\s*$/.test(text)) {
    throw new S3Error('MalformedXML', 'The XML you provided has text after its root element.');
  }
  const names = new Set(repeated);
  const parser = new XMLParser({
    ignoreAttributes: true,
    parseTagValue: false,
    trimValues: false,
    htmlEntities: true,
    isArray: (tagName) => names.has(tagName),
  });
  let document: Record<string, unknown>;
  try {
    document = parser.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new S3Error('MalformedXML', undefined, { cause: error });
  }
  // The validator accepts several top-level elements; XML (and S3) allow exactly one.
  const roots = Object.entries(document).filter(([name]) => name !== '?xml');
  if (roots.length !== 1 || Array.isArray(roots[0]![1])) {
    throw new S3Error('MalformedXML', 'The XML you provided must have exactly one root element.');
  }
  return document;
}

/**
 * What fast-xml-parser would let through although it is not (safe) XML: document type
 * declarations (entity expansion bombs, external entities; S3 bodies never need them), references
 * to undefined entities (it would keep `&name;` as literal text, so `<Key>&x;</Key>` would name a
 * different object than the client meant), and characters XML cannot carry.
 */
function rejectUnsafeMarkup(text: string): void {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new S3Error('MalformedXML', 'Document type declarations (<!DOCTYPE>, <!ENTITY>) are not accepted in S3 request bodies.');
  }
  // Scanned in document order: inside CDATA sections and comments '&' is literal text.
  const special = /<!\[CDATA\[|<!--|&/g;
  for (let found = special.exec(text); found !== null; found = special.exec(text)) {
    if (found[0] === '&') {
      checkReference(text.slice(found.index, found.index + 12));
    } else {
      special.lastIndex = skipPast(text, found[0] === '<!--' ? '-->' : ']]>', special.lastIndex);
    }
  }
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(text)) {
    throw new S3Error('MalformedXML', 'The XML contains a control character XML does not allow; encode such keys with encoding-type=url.');
  }
}

/** Index just after `terminator` (or the end, which the validator then reports as unterminated). */
function skipPast(text: string, terminator: string, from: number): number {
  const end = text.indexOf(terminator, from);
  return end === -1 ? text.length : end + terminator.length;
}

/** Checks the reference at the start of `snippet` (the text from an '&' on). */
function checkReference(snippet: string): void {
  const [reference, named, decimal, hex, semicolon] = /^&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}))?(;?)/.exec(snippet)!;
  if ((named === undefined && decimal === undefined && hex === undefined) || semicolon === '') {
    throw new S3Error('MalformedXML', `The XML contains "${snippet.split(/[\s<]/, 1)[0]}", which is not an XML reference; escape a literal "&" as "&amp;".`);
  }
  const codePoint = decimal !== undefined ? Number(decimal) : hex !== undefined ? Number.parseInt(hex, 16) : null;
  if (codePoint !== null && !isXmlChar(codePoint)) {
    throw new S3Error('MalformedXML', `The XML contains the character reference "${reference}", which is not a character XML allows.`);
  }
}

/** XML 1.0's Char production. */
function isXmlChar(codePoint: number): boolean {
  return (
    codePoint === 0x9 ||
    codePoint === 0xa ||
    codePoint === 0xd ||
    (codePoint >= 0x20 && codePoint <= 0xd7ff) ||
    (codePoint >= 0xe000 && codePoint <= 0xfffd) ||
    (codePoint >= 0x10000 && codePoint <= 0x10ffff)
  );
}

/** `<Name>value</Name>` with the value escaped; undefined/null renders nothing. */
export function element(name: string, value: string | number | boolean | null | undefined): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}
