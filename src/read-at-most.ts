/** Reading a small stream fully, with a hard cap so no peer can make us buffer without bound. */
import type { Readable } from 'node:stream';

/**
 * The whole stream if it holds at most `limit` bytes; null (and the stream destroyed) if it holds
 * more. Stream errors propagate; each caller turns them, and null, into its own error.
 */
export async function readAtMost(stream: Readable, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > limit) {
      stream.destroy();
      return null;
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
