/**
 * Request bodies the gateway reads itself before it acts (XML documents: DeleteObjects,
 * CompleteMultipartUpload, a bucket's CreateBucketConfiguration; PutObjectAcl documents), as
 * opposed to bodies streamed upstream with backpressure. What such a body is read into stays on
 * the heap until it is complete — the parsed entries of a DeleteObjects, the exact bytes of a
 * CompleteMultipartUpload — so a sender that stops just short of the end parks it there.
 *
 * Two bounds make that memory finite whatever the senders do: every byte read counts against a
 * budget for the process and a smaller share per access key until its body is done (past either,
 * `503 SlowDown`), and a body must arrive in full within a deadline (`400 RequestTimeout`, its
 * bytes given back). Without them, a key with `delete` parking DeleteObjects bodies on many
 * connections ran the process out of memory (~3 MB of heap per 2 MB body).
 */
import type { Readable } from 'node:stream';
import { S3Error } from '../errors.js';

/**
 * Bytes of such bodies held at once by the process. The heap they take is ~1-3x their size (the
 * bytes kept, or the strings parsed from them), which has to fit under the image's 128 MB heap cap
 * beside the gateway's ~20 MB of live objects.
 */
export const MAX_HELD_BODY_BYTES = 32 * 1024 * 1024;
/** What one access key may hold of it: one key's senders cannot refuse everyone else's. */
export const MAX_HELD_BODY_BYTES_PER_KEY = MAX_HELD_BODY_BYTES / 4;
/** How long such a body may take to arrive in full (2 MiB in a minute is ~35 KB/s). */
export const HELD_BODY_DEADLINE_MS = 60_000;

class ByteBudget {
  private used = 0;
  private readonly usedBy = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly ownerLimit: number,
  ) {}

  /** Takes `bytes` for `owner` even past the limits: for what exists already (an answer written). */
  force(owner: string, bytes: number): void {
    this.used += bytes;
    this.usedBy.set(owner, (this.usedBy.get(owner) ?? 0) + bytes);
  }

  take(owner: string, bytes: number): void {
    if ((this.usedBy.get(owner) ?? 0) + bytes > this.ownerLimit) {
      throw new S3Error('SlowDown', 'This key is sending too many DeleteObjects, CompleteMultipartUpload or ACL bodies at once; send fewer at a time.', {
        headers: { 'retry-after': '1' },
      });
    }
    if (this.used + bytes > this.limit) {
      throw new S3Error('SlowDown', 'The gateway is reading too many request bodies at once; retry shortly.', { headers: { 'retry-after': '1' } });
    }
    this.force(owner, bytes);
  }

  /** A release of `bytes` for `owner` that gives them back once, however often it is called. */
  releaseOnce(owner: string, bytes: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(owner, bytes);
    };
  }

  give(owner: string, bytes: number): void {
    if (bytes === 0) return;
    this.used -= bytes;
    const left = (this.usedBy.get(owner) ?? 0) - bytes;
    if (left > 0) this.usedBy.set(owner, left);
    else this.usedBy.delete(owner);
  }
}

const heldBytes = new ByteBudget(MAX_HELD_BODY_BYTES, MAX_HELD_BODY_BYTES_PER_KEY);

export interface HeldBodyOptions {
  /** Who sent it: the access key id whose share the bytes count against. */
  heldFor: string;
  maxBytes: number;
  /** The error for one byte more than maxBytes. */
  tooLarge(): S3Error;
  /** Default HELD_BODY_DEADLINE_MS. */
  deadlineMs?: number;
}

/**
 * Reads `body` to its end, handing each chunk to `onChunk` (awaited before the next is read), with
 * its bytes held against the budget. Stops at the first error (the caller's stream is left to the
 * HTTP layer, which discards the rest), and gives the bytes back then. Once the body is read, they
 * stay held for what the caller built from them: it calls the returned release when that is gone.
 */
export async function readHeldBody(body: Readable, options: HeldBodyOptions, onChunk: (chunk: Buffer) => void | Promise<void>): Promise<() => void> {
  const deadlineMs = options.deadlineMs ?? HELD_BODY_DEADLINE_MS;
  const deadline = setTimeout(() => {
    body.destroy(new S3Error('RequestTimeout', `The request body did not arrive within ${deadlineMs / 1000} s; send it without pausing.`));
  }, deadlineMs);
  let held = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      if (held + buffer.length > options.maxBytes) throw options.tooLarge();
      heldBytes.take(options.heldFor, buffer.length);
      held += buffer.length;
      await onChunk(buffer);
    }
  } catch (error) {
    heldBytes.give(options.heldFor, held);
    throw error;
  } finally {
    clearTimeout(deadline);
  }
  return heldBytes.releaseOnce(options.heldFor, held);
}

/**
 * Holds the bytes of an answer the gateway built from a held body (a DeleteResult echoes each key,
 * so it can be larger than the body) against the same share until the answer is done: a client
 * that reads no answers parks them in its connection's send buffer, and its key then gets
 * SlowDown instead of parking more. The answer exists, so it is held even past the share. Returns
 * the release, which may be called more than once.
 */
export function holdAnswerBytes(heldFor: string, bytes: number): () => void {
  heldBytes.force(heldFor, bytes);
  return heldBytes.releaseOnce(heldFor, bytes);
}
