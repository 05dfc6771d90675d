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
  // A byte order mark is not part of the document.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
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
  const roots = Object.entries(document).filter(([name]) => !name.startsWith('?'));
  if (roots.length !== 1 || Array.isArray(roots[0]![1])) {
    throw new S3Error('MalformedXML', 'The XML you provided must have exactly one root element.');
  }
  return document;
}

/**
 * What fast-xml-parser would let through although it is not (safe) XML, checked token by token:
 * document type declarations (entity expansion bombs, external entities; S3 bodies never need
 * them), a malformed or misplaced XML declaration, '<' inside attribute values, stray '<', references
 * to undefined entities (fast-xml-parser keeps `&name;` as literal text, so `<Key>&x;</Key>` would
 * name a different object than the client meant), and characters XML cannot carry. Nesting and
 * tag matching are left to XMLValidator.
 */
function rejectUnsafeMarkup(text: string): void {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new S3Error('MalformedXML', 'Document type declarations (<!DOCTYPE>, <!ENTITY>) are not accepted in S3 request bodies.');
  }
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(text)) {
    throw new S3Error('MalformedXML', 'The XML contains a control character XML does not allow; encode such keys with encoding-type=url.');
  }
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('<', at);
    checkReferences(text, at, open === -1 ? text.length : open);
    if (open === -1) return;
    at = skipMarkup(text, open);
  }
}

const NAME = '[A-Za-z_:\\u00C0-\\uFFFD][-A-Za-z0-9._:\\u00B7\\u00C0-\\uFFFD]*';
const START_TAG = new RegExp(`<${NAME}(?:\\s+${NAME}\\s*=\\s*(?:"[^<"]*"|'[^<']*'))*\\s*/?>`, 'y');
const END_TAG = new RegExp(`</${NAME}\\s*>`, 'y');
const PROCESSING_INSTRUCTION = new RegExp(`<\\?${NAME}(?:\\s[\\s\\S]*?)?\\?>`, 'y');
const DECLARATION = /<\?xml\s+version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\3)?\s*\?>/y;

/** Checks the markup starting at `open` (a '<') and returns the index after it. */
function skipMarkup(text: string, open: number): number {
  if (text.startsWith('<!--', open)) return skipPast(text, '-->', open + 4, 'comment');
  if (text.startsWith('<![CDATA[', open)) return skipPast(text, ']]>', open + 9, 'CDATA section');
  if (/^<\?xml[\s?]/i.test(text.slice(open, open + 6))) {
    if (open !== 0) throw new S3Error('MalformedXML', 'The XML declaration (<?xml …?>) may only appear at the very start of the document.');
    return matchAt(DECLARATION, text, open, 'The XML declaration is malformed; use e.g. <?xml version="1.0" encoding="UTF-8"?>.');
  }
  if (text.startsWith('<?', open)) return matchAt(PROCESSING_INSTRUCTION, text, open, 'A processing instruction (<?…?>) is malformed.');
  const end = text.startsWith('</', open)
    ? matchAt(END_TAG, text, open, `The XML has a malformed end tag at character ${open}.`)
    : matchAt(START_TAG, text, open, `The XML has a malformed tag or a stray "<" at character ${open}; escape a literal "<" as "&lt;".`);
  // Attribute values may hold references too.
  checkReferences(text, open, end);
  return end;
}

function matchAt(pattern: RegExp, text: string, at: number, problem: string): number {
  pattern.lastIndex = at;
  if (!pattern.test(text)) throw new S3Error('MalformedXML', problem);
  return pattern.lastIndex;
}

/** Index just after `terminator`, searching from `from`. */
function skipPast(text: string, terminator: string, from: number, what: string): number {
  const end = text.indexOf(terminator, from);
  if (end === -1) throw new S3Error('MalformedXML', `The XML has an unterminated ${what}.`);
  return end + terminator.length;
}

/** Every '&' in text[from, to) must start a predefined entity or a character reference XML allows. */
function checkReferences(text: string, from: number, to: number): void {
  for (let amp = text.indexOf('&', from); amp !== -1 && amp < to; amp = text.indexOf('&', amp + 1)) {
    checkReference(text.slice(amp, amp + 12));
  }
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
