/** Reading small request bodies (XML documents) fully, with a hard cap so no body can exhaust memory. */
import type { Readable } from 'node:stream';
import { readAtMost } from '../read-at-most.js';
import { S3Error } from './errors.js';

export async function readBodyText(body: Readable, maxBytes: number): Promise<string> {
  const bytes = await readAtMost(body, maxBytes);
  if (bytes === null) throw new S3Error('MaxMessageLengthExceeded', `This request's body is limited to ${maxBytes} bytes.`);
  return bytes.toString('utf8');
}
