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
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new S3Error('MalformedXML', `The XML you provided was not well-formed: ${valid.err.msg} (line ${valid.err.line}).`);
  }
  const names = new Set(repeated);
  const parser = new XMLParser({
    ignoreAttributes: true,
    parseTagValue: false,
    trimValues: false,
    htmlEntities: true,
    isArray: (tagName) => names.has(tagName),
  });
  try {
    return parser.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new S3Error('MalformedXML', undefined, { cause: error });
  }
}

/** `<Name>value</Name>` with the value escaped; undefined/null renders nothing. */
export function element(name: string, value: string | number | boolean | null | undefined): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}
