/**
 * Rewriting a few elements of an upstream's XML answer as it streams through: linear, with bounded
 * memory (the answer's length changes, so it is sent chunked). Used where an answer names what a
 * key must not see or cannot use as is: the upstream account's identity (`<ID>`, `<DisplayName>`
 * of owners, initiators and grantees) and raw upstream upload ids.
 *
 * A rewrite gets an element's whole content (still escaped XML) and returns the new content, so it
 * can look inside a record (an `<Upload>` entry: its `<Key>` and `<UploadId>`, in whatever order
 * the upstream writes them). Rules name elements by their tag name alone: in the S3 answers they
 * apply to, each name has one meaning wherever it appears, and object keys are escaped text, so a
 * key can never look like a tag.
 */
import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import { escapeXml } from '../errors.js';
import { decodeXmlText } from './xml.js';

/** Element name -> new content from its current content (escaped XML). */
export type ElementRewrites = Readonly<Record<string, (content: string) => string>>;

/** A rewrite of a text-only element: decoded text in, new text out (escaped for you). */
export function textRewrite(replace: (text: string) => string): (content: string) => string {
  return (content) => escapeXml(replace(decodeXmlText(content)));
}

/** The decoded text of the first `<name>` inside some content, if any. */
export function textOf(content: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(content);
  return match === null ? undefined : decodeXmlText(match[1]!);
}

/** Applies rewrites to the elements inside a (bounded) piece of content. */
export function rewriteWithin(content: string, rewrites: ElementRewrites): string {
  const names = Object.keys(rewrites);
  if (names.length === 0) return content;
  return content.replace(
    new RegExp(`<(${names.join('|')})>([^<]*)</\\1>`, 'g'),
    (_, name: string, inner: string) => `<${name}>${rewrites[name]!(inner)}</${name}>`,
  );
}

/** The longest element content captured; longer ones fail the answer (no S3 record comes close). */
const MAX_CONTENT = 256 * 1024;

export class XmlElementRewrite extends Transform {
  private readonly decoder = new StringDecoder('utf8');
  private readonly opening: RegExp;
  private readonly longestTag: number;
  private pending = '';
  /** The element whose content is being captured, and the content so far. */
  private inside: { name: string; content: string } | null = null;

  constructor(private readonly rewrites: ElementRewrites) {
    super();
    const names = Object.keys(rewrites);
    this.opening = new RegExp(`<(${names.join('|')})>`, 'g');
    this.longestTag = Math.max(...names.map((name) => name.length)) + 3;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending += this.decoder.write(chunk);
    this.pass(this.consume(false), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.pending += this.decoder.end();
    this.pass(this.consume(true), callback);
  }

  private pass(out: string | Error, callback: TransformCallback): void {
    if (out instanceof Error) callback(out);
    else callback(null, out === '' ? undefined : out);
  }

  private consume(final: boolean): string | Error {
    let out = '';
    let text = this.pending;
    for (;;) {
      if (this.inside !== null) {
        const closing = `</${this.inside.name}>`;
        const end = text.indexOf(closing);
        if (end === -1) {
          // The rest of the text may end with part of the closing tag: keep that for the next chunk.
          const keep = final ? 0 : Math.min(closing.length - 1, text.length);
          this.inside.content += text.slice(0, text.length - keep);
          text = text.slice(text.length - keep);
          if (this.inside.content.length > MAX_CONTENT) return new Error(`upstream answer: <${this.inside.name}> is longer than ${MAX_CONTENT} characters`);
          break;
        }
        out += this.rewrites[this.inside.name]!(this.inside.content + text.slice(0, end)) + closing;
        text = text.slice(end + closing.length);
        this.inside = null;
        continue;
      }
      this.opening.lastIndex = 0;
      const match = this.opening.exec(text);
      if (match === null) {
        const keep = final ? 0 : Math.min(this.longestTag - 1, text.length);
        out += text.slice(0, text.length - keep);
        text = text.slice(text.length - keep);
        break;
      }
      out += text.slice(0, match.index + match[0].length);
      text = text.slice(match.index + match[0].length);
      this.inside = { name: match[1]!, content: '' };
    }
    this.pending = text;
    return out;
  }
}
