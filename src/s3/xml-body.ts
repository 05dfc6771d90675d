/**
 * Reading the XML request bodies the gateway acts on itself (DeleteObjects, CompleteMultipartUpload)
 * as they arrive, with a streaming parser (sax, strict mode), so the work is linear in the body and
 * spread over its chunks: no body can hold the event loop for long, and the limits (bytes, entries,
 * nesting, which elements) stop a bad body at the first byte that breaks them, before the rest is
 * even read.
 *
 * fast-xml-parser, which reads upstream answers, parses a whole string at once: a 2 MiB body held the
 * event loop for 200-330 ms (1.3 s with the checks it needed on top), which is why request bodies
 * are read here instead (docs/hardening.md, "XML request bodies").
 *
 * A body has a fixed shape: one root element, simple fields under it, and a repeated entry element
 * whose children are simple fields. Values stay byte-exact (no trimming; character references
 * decoded). What is not well-formed XML, or not this shape, is MalformedXML; document type
 * declarations (entity bombs, external entities) are refused outright.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type sax from 'sax';
import { lazyRequire } from '../lazy-require.js';
import { S3Error } from '../errors.js';
import { readHeldBody } from './held-bodies.js';

const loadSax = lazyRequire<typeof sax>('sax');
/** S3 itself rejects DeleteObjects bodies over ~2 MB; every XML body the gateway reads is capped at this. */
export const MAX_XML_BODY_BYTES = 2 * 1024 * 1024;

export interface XmlBodyShape {
  root: string;
  /** Simple elements directly under the root (e.g. Quiet), each at most once. */
  rootFields: readonly string[];
  /** The repeated element (e.g. Object, Part). */
  entry: string;
  /** Simple elements of an entry, each at most once per entry. */
  entryFields: readonly string[];
  maxEntries: number;
  /** The error for one entry too many. */
  tooManyEntries(): S3Error;
}

export interface XmlBody {
  rootFields: Record<string, string>;
  entries: Array<Record<string, string>>;
}

/** Characters XML 1.0 cannot carry (as such or as a character reference). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NOT_XML_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const XML_NAME = /^[A-Za-z_:][-A-Za-z0-9._:]*$/;
const XML_DECLARATION_BODY =
  /^version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\3)?\s*$/;
/**
 * The reader takes a body in slices of this size and lets the event loop run between two slices
 * (sax needs a few ms for 8 KiB before V8 has optimized it): so one body never holds the
 * loop for long, even when it arrived whole.
 */
const SLICE_BYTES = 8 * 1024;
/**
 * The longest stretch of text, or of one tag, comment or CDATA section, between two `<`/`>`: no
 * S3 request value comes close (a 1024-byte key written as character references stays under it),
 * and sax holds such a stretch whole on the heap until it ends.
 */
const MAX_RUN_CHARS = 16 * 1024;
/** The longest value of one field, decoded (a key is at most 1024 bytes). */
const MAX_FIELD_CHARS = 4096;
/** Attributes an element may carry (xmlns, xmlns:xsi, xsi:type, …); S3 documents need fewer. */
const MAX_ATTRIBUTES = 8;
/** XML body chunks parsed at once by the whole process; more wait their turn (bytes stay in the socket meanwhile). */
const CONCURRENT_READS = 8;

/** sax's error messages, said so that a client knows what to fix. */
function explainSaxError(message: string): string {
  if (/entity/i.test(message)) {
    return 'an "&" starts something that is not an XML reference (XML defines &amp; &lt; &gt; &quot; &apos; and character references); escape a literal "&" as "&amp;".';
  }
  if (/tag name|Unencoded <|Unexpected close tag|Invalid tagname/i.test(message)) {
    return `${message.replace(/\.$/, '')}: a malformed tag or a stray "<"; escape a literal "<" as "&lt;".`;
  }
  if (/outside of root/i.test(message)) return 'the body has text after (or before) its root element.';
  if (/Unclosed|Unexpected end/i.test(message))
    return `${message.replace(/\.$/, '')}: the document ends early (an unclosed element, comment or CDATA section).`;
  return `${message.replace(/\.$/, '')}.`;
}

function malformed(detail: string): S3Error {
  return new S3Error('MalformedXML', `The XML you provided was not well-formed or did not match the expected document: ${detail}`);
}

/**
 * An incremental reader for one body of the given shape: write() the bytes as they come, end() for
 * the result. Throws S3Error (MalformedXML, or the shape's own error for too many entries) at the
 * first problem.
 */
export class XmlBodyReader {
  private readonly parser: sax.SAXParser;
  private readonly decoder = new StringDecoder('utf8');
  private readonly result: XmlBody = { rootFields: {}, entries: [] };
  /** Open elements, root first. */
  private readonly open: string[] = [];
  private entry: Record<string, string> | null = null;
  private field: { name: string; into: Record<string, string>; text: string } | null = null;
  private rootClosed = false;
  private first = true;
  private attributes = 0;
  /** Characters since the last `<` or `>`, and where the next of each lies in the current text. */
  private run = 0;

  constructor(private readonly shape: XmlBodyShape) {
    // strictEntities: only XML's five predefined entities (sax would otherwise decode HTML ones like &nbsp;).
    this.parser = loadSax().parser(true, { strictEntities: true, position: true } as sax.SAXOptions);
    this.parser.onerror = (error) => {
      throw malformed(explainSaxError(error.message.split('\n', 1)[0]!));
    };
    this.parser.ondoctype = () => {
      throw malformed('document type declarations (<!DOCTYPE>, <!ENTITY>) are not accepted in S3 request bodies.');
    };
    this.parser.onsgmldeclaration = () => {
      throw malformed('"<!" starts neither a comment nor a CDATA section; escape a literal "<" as "&lt;".');
    };
    this.parser.onprocessinginstruction = ({ name, body }) => {
      if (!XML_NAME.test(name)) throw malformed(`"<?${name.slice(0, 40)}" is not a processing instruction.`);
      if (name.toLowerCase() !== 'xml') return;
      if (this.parser.startTagPosition !== 1) throw malformed('the XML declaration (<?xml …?>) may only appear at the very start of the document.');
      if (!XML_DECLARATION_BODY.test(body)) throw malformed('the XML declaration is malformed; use e.g. <?xml version="1.0" encoding="UTF-8"?>.');
    };
    this.parser.onattribute = () => {
      if (++this.attributes > MAX_ATTRIBUTES)
        throw malformed(`an element has more than ${MAX_ATTRIBUTES} attributes; S3 request documents need none but namespaces.`);
    };
    this.parser.onopentag = ({ name, attributes }) => {
      this.attributes = 0;
      // Attributes (xmlns, xsi:type) are ignored; a "<" in one is malformed (or at least nothing S3 sends).
      for (const value of Object.values(attributes)) {
        if (typeof value === 'string' && value.includes('<')) throw malformed(`an attribute of <${name}> contains "<"; escape it as "&lt;".`);
      }
      this.openElement(name);
    };
    this.parser.onclosetag = () => this.closeElement();
    this.parser.ontext = (text) => this.text(text);
    this.parser.oncdata = (text) => this.text(text, true);
  }

  write(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    if (this.first && text.length > 0) {
      this.first = false;
      // A byte order mark is not part of the document.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.feed(text);
  }

  end(): XmlBody {
    this.feed(this.decoder.end());
    try {
      this.parser.close();
    } catch (error) {
      throw error instanceof S3Error ? error : malformed(String(error));
    }
    if (!this.rootClosed) throw malformed(this.open.length > 0 ? `<${this.open[0]}> is not closed.` : `the body has no <${this.shape.root}> element.`);
    return this.result;
  }

  private feed(text: string): void {
    if (text === '') return;
    if (NOT_XML_CHARS.test(text)) throw malformed('the XML contains a character XML does not allow (a control character or a lone surrogate).');
    this.checkRuns(text);
    try {
      this.parser.write(text);
    } catch (error) {
      // sax throws plain errors for some input (e.g. String.fromCodePoint on a huge character reference).
      throw error instanceof S3Error ? error : malformed(`${String((error as Error).message ?? error).split('\n', 1)[0]}.`);
    }
  }

  /** Refuses a stretch of text or markup longer than MAX_RUN_CHARS, as it arrives (linear: each `<`/`>` is found once). */
  private checkRuns(text: string): void {
    let lt = text.indexOf('<');
    let gt = text.indexOf('>');
    let at = 0;
    for (;;) {
      if (lt !== -1 && lt < at) lt = text.indexOf('<', at);
      if (gt !== -1 && gt < at) gt = text.indexOf('>', at);
      const next = lt === -1 ? gt : gt === -1 ? lt : Math.min(lt, gt);
      const end = next === -1 ? text.length : next;
      this.run += end - at;
      if (this.run > MAX_RUN_CHARS) throw malformed(`a text, tag or comment is longer than ${MAX_RUN_CHARS} characters, far more than any S3 value.`);
      if (next === -1) return;
      this.run = 0;
      at = next + 1;
    }
  }

  private openElement(name: string): void {
    const depth = this.open.length;
    const { shape } = this;
    if (depth === 0) {
      if (this.rootClosed) throw malformed('an XML document has exactly one root element.');
      if (name !== shape.root) throw malformed(`the root element must be <${shape.root}>, not <${name}>.`);
    } else if (this.field !== null) {
      throw malformed(`<${this.field.name}> holds text, not elements like <${name}>.`);
    } else if (depth === 1 && name === shape.entry) {
      if (this.result.entries.length === shape.maxEntries) throw shape.tooManyEntries();
      this.entry = {};
      this.result.entries.push(this.entry);
    } else if (depth === 1 && shape.rootFields.includes(name)) {
      this.startField(name, this.result.rootFields);
    } else if (depth === 2 && this.entry !== null && shape.entryFields.includes(name)) {
      this.startField(name, this.entry);
    } else {
      throw malformed(`<${name}> is not expected inside <${this.open[depth - 1]}>.`);
    }
    this.open.push(name);
  }

  private startField(name: string, into: Record<string, string>): void {
    if (Object.hasOwn(into, name)) throw malformed(`<${name}> appears twice in one <${this.open[this.open.length - 1]}>.`);
    this.field = { name, into, text: '' };
  }

  private closeElement(): void {
    const name = this.open.pop()!;
    if (this.field !== null && this.field.name === name) {
      this.field.into[name] = this.field.text;
      this.field = null;
    } else if (name === this.shape.entry && this.open.length === 1) {
      this.entry = null;
    }
    if (this.open.length === 0) this.rootClosed = true;
  }

  private text(text: string, cdata = false): void {
    if (this.field !== null) {
      this.field.text += text;
      if (this.field.text.length > MAX_FIELD_CHARS) throw malformed(`<${this.field.name}> is longer than ${MAX_FIELD_CHARS} characters.`);
      return;
    }
    if (!cdata && /^\s*$/.test(text)) return;
    if (this.open.length === 0) throw malformed(this.rootClosed ? 'the body has text after its root element.' : 'the body has text before its root element.');
    throw malformed(`<${this.open[this.open.length - 1]}> may only contain elements, not text.`);
  }
}

export interface ReadXmlBodyOptions {
  /** The sender's access key id: the body is held against its share while it is read (held-bodies.ts). */
  heldFor: string;
  maxBytes?: number;
  /** Also return the exact bytes (for bodies that are checked, then forwarded unchanged). */
  keepBytes?: boolean;
  /** Default HELD_BODY_DEADLINE_MS. */
  deadlineMs?: number;
  /**
   * Keep the body's bytes held after it is read, for as long as what is made of it lives (a
   * DeleteObjects' entries during its deletes); the caller then calls the result's `release`.
   */
  keepHeld?: boolean;
}

/**
 * Reads a request body of the given shape as it arrives. Throws MaxMessageLengthExceeded past
 * `maxBytes` (default MAX_XML_BODY_BYTES), SlowDown / RequestTimeout from the held-body bounds, and
 * stops reading at the first error; the caller's stream is left to the HTTP layer, which discards
 * the rest.
 */
export async function readXmlBody(
  body: Readable,
  shape: XmlBodyShape,
  options: ReadXmlBodyOptions,
): Promise<{ document: XmlBody; bytes: Buffer | null; release: () => void }> {
  const maxBytes = options.maxBytes ?? MAX_XML_BODY_BYTES;
  const reader = new XmlBodyReader(shape);
  const kept: Buffer[] = [];
  const release = await readHeldBody(
    body,
    { heldFor: options.heldFor, maxBytes, tooLarge: () => xmlBodyTooLarge(maxBytes), deadlineMs: options.deadlineMs },
    async (buffer) => {
      if (options.keepBytes) kept.push(buffer);
      // A slot while parsing what arrived, never while waiting for more: a sender that trickles its
      // body (or stops) must not hold up everyone else's XML requests.
      await readSlots.acquire();
      try {
        await parseChunk(reader, buffer);
      } finally {
        readSlots.release();
      }
    },
  );
  try {
    // The caller gets its own copy (Buffer.concat), so the chunks are no longer held for it.
    return { document: reader.end(), bytes: options.keepBytes ? Buffer.concat(kept) : null, release };
  } catch (error) {
    release();
    throw error;
  } finally {
    if (!options.keepHeld) release();
  }
}

async function parseChunk(reader: XmlBodyReader, buffer: Buffer): Promise<void> {
  for (let at = 0; at < buffer.length; at += SLICE_BYTES) {
    reader.write(buffer.subarray(at, at + SLICE_BYTES));
    // Data already buffered is read without waiting for I/O: let other requests run in between.
    if (at + SLICE_BYTES < buffer.length) await yieldToEventLoop();
  }
}

/** A counting semaphore: XML bodies beyond CONCURRENT_READS wait (their bytes stay in the socket) instead of all being parsed at once. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(count: number) {
    this.free = count;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const readSlots = new Slots(CONCURRENT_READS);

/** Reads a whole body held in memory (tests, small documents). */
export function parseXmlBody(text: string, shape: XmlBodyShape): XmlBody {
  const bytes = Buffer.from(text);
  if (bytes.length > MAX_XML_BODY_BYTES) throw xmlBodyTooLarge(MAX_XML_BODY_BYTES);
  const reader = new XmlBodyReader(shape);
  reader.write(bytes);
  return reader.end();
}

function xmlBodyTooLarge(maxBytes: number): S3Error {
  return new S3Error('MaxMessageLengthExceeded', `XML request bodies are limited to ${maxBytes} bytes.`);
}
