/**
 * XML the gateway writes (responses built from escaped strings, so nothing a client sent can break
 * the document) and XML it reads from upstreams (one fast-xml-parser setup that keeps values
 * byte-exact). Request bodies are read by xml-body.ts.
 */
import type * as FastXmlParser from 'fast-xml-parser';
import { lazyRequire } from '../lazy-require.js';
import { escapeXml } from '../errors.js';

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const loadFastXmlParser = lazyRequire<typeof FastXmlParser>('fast-xml-parser');
/** `<Name>value</Name>` with the value escaped; undefined/null renders nothing. */
export function element(name: string, value: string | number | boolean | null | undefined): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** XML element text as it reads: the five predefined entities and character references decoded. */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]{1,6}|#[0-9]{1,7});/g, (_, entity: string) => {
    switch (entity) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default: {
        const codePoint = entity[1] === 'x' ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1));
        return codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : '';
      }
    }
  });
}

/**
 * Parses an upstream's (trusted, size-capped) XML answer. `repeated` names elements that are
 * always arrays. Values are kept as sent (no number parsing, no trimming).
 */
export function parseUpstreamXml(xml: string, repeated: readonly string[] = []): Record<string, unknown> {
  const names = new Set(repeated);
  const parser = new (loadFastXmlParser().XMLParser)({
    ignoreAttributes: true,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    isArray: (tagName) => names.has(tagName),
  });
  return parser.parse(xml) as Record<string, unknown>;
}
