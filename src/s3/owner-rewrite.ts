/**
 * Listings and ACL reads name their owner (`<Owner>`, `<Initiator>`, `<Grantee>` with `<ID>` and
 * `<DisplayName>`): upstream, that is the operator's account, which no key should learn. The
 * gateway answers with the key's own identity instead, rewriting those two elements as the
 * response streams through (linear, bounded memory; the response's length changes, so it is sent
 * chunked). In S3 responses `<ID>` and `<DisplayName>` appear nowhere else, and object keys are
 * escaped text, so a key can never look like one of these tags.
 */
import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import { escapeXml } from '../errors.js';

const OPENING = /<(ID|DisplayName)>/g;
/** Longest tag that may be split across chunks, minus one. */
const CARRY = '</DisplayName>'.length - 1;

export class OwnerRewrite extends Transform {
  private readonly decoder = new StringDecoder('utf8');
  private readonly values: Record<'ID' | 'DisplayName', string>;
  private pending = '';
  private inside: 'ID' | 'DisplayName' | null = null;

  constructor(owner: { id: string; displayName: string }) {
    super();
    this.values = { ID: escapeXml(owner.id), DisplayName: escapeXml(owner.displayName) };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending += this.decoder.write(chunk);
    const out = this.consume(false);
    callback(null, out === '' ? undefined : out);
  }

  override _flush(callback: TransformCallback): void {
    this.pending += this.decoder.end();
    const out = this.consume(true);
    callback(null, out === '' ? undefined : out);
  }

  private consume(final: boolean): string {
    let out = '';
    let text = this.pending;
    for (;;) {
      if (this.inside !== null) {
        const closing = `</${this.inside}>`;
        const end = text.indexOf(closing);
        if (end === -1) {
          // Still inside the value: drop it, keeping what could be the start of the closing tag.
          text = final ? '' : text.slice(Math.max(0, text.length - CARRY));
          break;
        }
        out += this.values[this.inside] + closing;
        text = text.slice(end + closing.length);
        this.inside = null;
        continue;
      }
      OPENING.lastIndex = 0;
      const match = OPENING.exec(text);
      if (match === null) {
        const keep = final ? 0 : Math.min(CARRY, text.length);
        out += text.slice(0, text.length - keep);
        text = text.slice(text.length - keep);
        break;
      }
      out += text.slice(0, match.index + match[0].length);
      text = text.slice(match.index + match[0].length);
      this.inside = match[1] as 'ID' | 'DisplayName';
    }
    this.pending = text;
    return out;
  }
}
