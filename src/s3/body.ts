/** Reading small request bodies (XML documents) fully, with a hard cap so no body can exhaust memory. */
import type { Readable } from 'node:stream';
import { readAtMost } from '../read-at-most.js';
import { S3Error } from '../errors.js';

/** The body's exact bytes (for bodies that are checked, then forwarded unchanged). */
export async function readBodyBytes(body: Readable, maxBytes: number): Promise<Buffer> {
  const bytes = await readAtMost(body, maxBytes);
  if (bytes === null) throw tooLarge(maxBytes);
  return bytes;
}

export async function readBodyText(body: Readable, maxBytes: number): Promise<string> {
  return (await readBodyBytes(body, maxBytes)).toString('utf8');
}

/** Refuses a body whose declared length is over the cap before any of it is read. */
export function assertBodyWithin(contentLength: number | null, maxBytes: number): void {
  if (contentLength !== null && contentLength > maxBytes) throw tooLarge(maxBytes);
}

function tooLarge(maxBytes: number): S3Error {
  return new S3Error('MaxMessageLengthExceeded', `This request's body is limited to ${maxBytes} bytes.`);
}
