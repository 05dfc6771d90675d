/**
 * Incremental decoder for the aws-chunked framing S3 clients use for streaming uploads:
 *
 *   hex-size[;chunk-signature=sig] CRLF data CRLF   (repeated)
 *   0[;chunk-signature=sig] CRLF
 *   [name:value CRLF]* [x-amz-trailer-signature:sig CRLF] CRLF
 *
 * Framing only: signatures and checksums are checked by the handlers (payload.ts). Input may be
 * split anywhere. Memory is bounded by the line cap; chunk data is handed on as slices, never buffered.
 * Tolerated variants seen from real clients: bare LF instead of CRLF, a blank line between the final
 * chunk and the trailers, missing final blank line at end of body, and extra CRLFs after the end.
 */
import { S3Error } from '../errors.js';

export interface ChunkHeader {
  size: number;
  /** Value of the chunk-signature extension, if any. */
  signature: string | undefined;
}

export interface ChunkedHandlers {
  /** A data chunk (size > 0) starts. */
  chunkStart(header: ChunkHeader): void;
  /** A piece of the current chunk's data (a view into the input; not copied). */
  data(piece: Buffer): void;
  /** All data of the current chunk has arrived. */
  chunkEnd(): void;
  /** The 0-length chunk that ends the data. */
  finalChunk(header: ChunkHeader): void;
  /** One `name:value` trailer line (name lower-cased, value trimmed). */
  trailer(name: string, value: string): void;
  trailerSignature(signature: string): void;
}

export interface ChunkedLimits {
  /** Largest accepted chunk; default 16 MiB (clients use 64 KiB .. 8 MiB). */
  maxChunkSize: number;
  /** Longest chunk-header or trailer line; default 4 KiB. */
  maxLineLength: number;
  /** Most trailer lines accepted (signature line included). */
  maxTrailers: number;
  /** Whether the mode announces trailers (a blank line after the final chunk then does not end the body). */
  expectTrailers: boolean;
}

export const DEFAULT_MAX_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_MAX_LINE_LENGTH = 4096;

type State = 'size-line' | 'data' | 'data-crlf' | 'trailer-line' | 'done';

const LF = 0x0a;
const CR = 0x0d;
const CHUNK_SIZE = /^[0-9a-fA-F]{1,16}$/;

export function malformedChunked(detail: string): S3Error {
  return new S3Error('InvalidRequest', `Malformed aws-chunked body: ${detail}`);
}

export class AwsChunkedDecoder {
  private state: State = 'size-line';
  private remaining = 0;
  private sawCr = false;
  private lineParts: Buffer[] = [];
  private lineLength = 0;
  private trailerLines = 0;
  private sawTrailerSignature = false;
  private chunkIndex = 0;

  constructor(
    private readonly handlers: ChunkedHandlers,
    private readonly limits: ChunkedLimits,
  ) {}

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Feeds raw body bytes; handler errors propagate. */
  write(input: Buffer): void {
    let offset = 0;
    while (offset < input.length) {
      switch (this.state) {
        case 'size-line': {
          const line = this.readLine(input, offset);
          offset = line.offset;
          if (line.text !== undefined) this.onSizeLine(line.text);
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, input.length - offset);
          this.handlers.data(input.subarray(offset, offset + take));
          offset += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.handlers.chunkEnd();
            this.state = 'data-crlf';
            this.sawCr = false;
          }
          break;
        }
        case 'data-crlf': {
          const byte = input[offset++]!;
          if (byte === CR && !this.sawCr) this.sawCr = true;
          else if (byte === LF) this.state = 'size-line';
          else throw malformedChunked(`chunk ${this.chunkIndex} is longer than its declared size (expected CRLF after its data).`);
          break;
        }
        case 'trailer-line': {
          const line = this.readLine(input, offset);
          offset = line.offset;
          if (line.text !== undefined) this.onTrailerLine(line.text);
          break;
        }
        case 'done': {
          const byte = input[offset++]!;
          if (byte !== CR && byte !== LF) throw malformedChunked('unexpected data after the end of the trailing headers.');
          break;
        }
      }
    }
  }

  /** The body ended. Throws IncompleteBody unless the framing was complete. */
  end(): void {
    if (this.state === 'trailer-line') {
      // Some clients end the body right after the last trailer line, without the closing blank line.
      if (this.lineLength > 0) this.onTrailerLine(this.takeLine(Buffer.alloc(0)));
      this.state = 'done';
    }
    if (this.state !== 'done') {
      throw new S3Error(
        'IncompleteBody',
        this.state === 'data'
          ? `The body ended inside chunk ${this.chunkIndex}, ${this.remaining} bytes short of its declared size.`
          : 'The body ended before the final 0-length aws-chunked chunk.',
      );
    }
  }

  private readLine(input: Buffer, offset: number): { text: string | undefined; offset: number } {
    const newline = input.indexOf(LF, offset);
    const end = newline < 0 ? input.length : newline;
    // +1 leaves room for the CR of a CRLF-terminated line.
    if (this.lineLength + (end - offset) > this.limits.maxLineLength + 1) {
      throw new S3Error('MaxMessageLengthExceeded', `An aws-chunked header or trailer line is longer than ${this.limits.maxLineLength} bytes.`);
    }
    if (newline < 0) {
      if (end > offset) {
        this.lineParts.push(input.subarray(offset));
        this.lineLength += end - offset;
      }
      return { text: undefined, offset: input.length };
    }
    return { text: this.takeLine(input.subarray(offset, newline)), offset: newline + 1 };
  }

  private takeLine(last: Buffer): string {
    const bytes = this.lineParts.length === 0 ? last : Buffer.concat([...this.lineParts, last]);
    this.lineParts = [];
    this.lineLength = 0;
    const length = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
    return bytes.toString('latin1', 0, length);
  }

  private onSizeLine(line: string): void {
    const header = this.parseChunkHeader(line);
    if (header.size === 0) {
      this.handlers.finalChunk(header);
      this.state = 'trailer-line';
      return;
    }
    this.chunkIndex++;
    this.handlers.chunkStart(header);
    this.remaining = header.size;
    this.state = 'data';
  }

  private parseChunkHeader(line: string): ChunkHeader {
    const semicolon = line.indexOf(';');
    const sizeText = semicolon < 0 ? line : line.slice(0, semicolon);
    if (!CHUNK_SIZE.test(sizeText)) {
      throw malformedChunked(`expected a hexadecimal chunk size, got "${truncate(line)}".`);
    }
    const significant = sizeText.replace(/^0+/, '');
    const size = significant.length > 12 ? Infinity : parseInt(significant || '0', 16);
    if (size > this.limits.maxChunkSize) {
      throw new S3Error(
        'MaxMessageLengthExceeded',
        `aws-chunked chunk of ${significant.length > 12 ? 'more than 2^48' : size} bytes exceeds the ${this.limits.maxChunkSize}-byte limit; use smaller chunks (S3 clients send 64 KiB to 8 MiB).`,
      );
    }
    let signature: string | undefined;
    if (semicolon >= 0) {
      for (const extension of line.slice(semicolon + 1).split(';')) {
        const eq = extension.indexOf('=');
        const name = (eq < 0 ? extension : extension.slice(0, eq)).trim();
        if (name !== 'chunk-signature') continue; // unknown chunk extensions are ignored (RFC 9112)
        if (signature !== undefined) throw malformedChunked('a chunk carries two chunk-signature extensions.');
        signature = eq < 0 ? '' : extension.slice(eq + 1).trim();
      }
    }
    return { size, signature };
  }

  private onTrailerLine(line: string): void {
    if (line === '') {
      // A blank line right after the final chunk, when trailers are announced, precedes them.
      if (this.limits.expectTrailers && this.trailerLines === 0) return;
      this.state = 'done';
      return;
    }
    if (++this.trailerLines > this.limits.maxTrailers) {
      throw new S3Error('MaxMessageLengthExceeded', `More than ${this.limits.maxTrailers} trailing header lines.`);
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformedChunked(`expected a "name:value" trailing header, got "${truncate(line)}".`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (this.sawTrailerSignature) throw malformedChunked(`trailing header "${name}" follows x-amz-trailer-signature, which must come last.`);
    if (name === 'x-amz-trailer-signature') {
      this.sawTrailerSignature = true;
      this.handlers.trailerSignature(value);
    } else {
      this.handlers.trailer(name, value);
    }
  }
}

function truncate(text: string): string {
  return text.length > 80 ? text.slice(0, 80) + '…' : text;
}
