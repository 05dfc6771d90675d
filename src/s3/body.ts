/** Reading small request bodies (XML documents) fully, with a hard cap so no body can exhaust memory. */
import type { Readable } from 'node:stream';
import { S3Error } from './errors.js';

export async function readBodyText(body: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > maxBytes) {
      body.destroy();
      throw new S3Error('MaxMessageLengthExceeded', `This request's body is limited to ${maxBytes} bytes.`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
