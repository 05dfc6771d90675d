/**
 * Bodies the gateway reads before it acts (DeleteObjects, CompleteMultipartUpload, ACL and bucket
 * configuration documents) park what they were read into on the heap while their senders wait: the
 * bytes held count against a budget for the process and a share per key, and a body must arrive
 * within a deadline. Without them, DeleteObjects bodies stopped just short of their end ran the
 * process out of memory.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { COMPLETE_MULTIPART_SHAPE } from '../../src/s3/complete-multipart.js';
import { DELETE_REQUEST_SHAPE, deleteRequest } from '../../src/s3/delete-objects.js';
import { holdAnswerBytes, MAX_HELD_BODY_BYTES, MAX_HELD_BODY_BYTES_PER_KEY, readHeldBody } from '../../src/s3/held-bodies.js';
import { readXmlBody, type XmlBodyShape } from '../../src/s3/xml-body.js';

/** Nearly 2 MB of a valid DeleteObjects body (1000 keys of 1900 characters), not yet closed. */
const DELETE_OPENING = Buffer.from(`<Delete>${`<Object><Key>${'k'.repeat(1900)}</Key></Object>`.repeat(990)}`);
const DELETE_CLOSING = Buffer.from('</Delete>');
/** Nearly 2 MB of a valid CompleteMultipartUpload body, not yet closed. */
const COMPLETE_OPENING = Buffer.from(`<CompleteMultipartUpload>${`<Part><PartNumber>1</PartNumber><ETag>"e"</ETag></Part>${' '.repeat(8000)}`.repeat(240)}`);
const COMPLETE_CLOSING = Buffer.from('</CompleteMultipartUpload>');

type Outcome = string;

/** Starts reading one body per stream for `heldFor`, writes `opening` into each; outcomes settle later. */
function park(count: number, shape: XmlBodyShape, heldFor: (i: number) => string, opening: Buffer, deadlineMs?: number) {
  const streams = Array.from({ length: count }, () => new PassThrough());
  const outcomes: Array<Promise<Outcome>> = streams.map((stream, i) =>
    readXmlBody(stream, shape, { heldFor: heldFor(i), keepBytes: shape === COMPLETE_MULTIPART_SHAPE, deadlineMs }).then(
      () => 'read',
      (error: S3Error) => `${error.code}: ${error.message}`,
    ),
  );
  for (const stream of streams) stream.write(opening);
  return { streams, outcomes };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('bodies held while they are read', () => {
  it('parked DeleteObjects bodies count: past the process budget one more gets SlowDown, and reads again once they end', async () => {
    const fit = Math.floor(MAX_HELD_BODY_BYTES / DELETE_OPENING.length);
    // Senders of several keys, each within its own share.
    const parked = park(fit, DELETE_REQUEST_SHAPE, (i) => `key-${i % 8}`, DELETE_OPENING);
    await settle();
    const extra = park(1, DELETE_REQUEST_SHAPE, () => 'key-8', DELETE_OPENING);
    expect(await extra.outcomes[0]).toMatch(/^SlowDown: The gateway is reading too many request bodies/);
    for (const stream of parked.streams) stream.end(DELETE_CLOSING);
    expect(new Set(await Promise.all(parked.outcomes))).toEqual(new Set(['read']));
    const again = park(1, DELETE_REQUEST_SHAPE, () => 'key-8', DELETE_OPENING);
    again.streams[0]!.end(DELETE_CLOSING);
    expect(await again.outcomes[0]).toBe('read');
  });

  it("refuses one key's body past its share, while another key's is still read", async () => {
    const fit = Math.floor(MAX_HELD_BODY_BYTES_PER_KEY / COMPLETE_OPENING.length);
    const greedy = park(fit + 1, COMPLETE_MULTIPART_SHAPE, () => 'greedy', COMPLETE_OPENING);
    const other = park(1, COMPLETE_MULTIPART_SHAPE, () => 'other', COMPLETE_OPENING);
    other.streams[0]!.end(COMPLETE_CLOSING);
    expect(await other.outcomes[0]).toBe('read');
    for (const stream of greedy.streams) stream.end(COMPLETE_CLOSING);
    const results = await Promise.all(greedy.outcomes);
    expect(results.filter((r) => r === 'read')).toHaveLength(fit);
    expect(results.filter((r) => r !== 'read')).toEqual([expect.stringMatching(/^SlowDown: This key is sending too many/)]);
  });

  it('refuses bodies that stop arriving at the deadline, destroys their streams and gives their bytes back', async () => {
    for (const [shape, opening, closing] of [
      [DELETE_REQUEST_SHAPE, DELETE_OPENING, DELETE_CLOSING],
      [COMPLETE_MULTIPART_SHAPE, COMPLETE_OPENING, COMPLETE_CLOSING],
    ] as const) {
      const fit = Math.floor(MAX_HELD_BODY_BYTES_PER_KEY / opening.length);
      // The key's whole share, then nothing more.
      const stalled = park(fit, shape, () => 'slow', opening, 100);
      expect(new Set(await Promise.all(stalled.outcomes))).toEqual(
        new Set(['RequestTimeout: The request body did not arrive within 0.1 s; send it without pausing.']),
      );
      expect(stalled.streams.every((stream) => stream.destroyed)).toBe(true);
      // The key's share is whole again: as many bodies are read at once.
      const next = park(fit, shape, () => 'slow', opening);
      for (const stream of next.streams) stream.end(closing);
      expect(new Set(await Promise.all(next.outcomes))).toEqual(new Set(['read']));
    }
  });

  it('reads small documents (PutObjectAcl) under the same bounds', async () => {
    const chunks: Buffer[] = [];
    const tooLarge = () => new S3Error('MaxMessageLengthExceeded', 'too large');
    const body = new PassThrough();
    const read = readHeldBody(body, { heldFor: 'acl', maxBytes: 10, tooLarge }, (chunk) => void chunks.push(chunk));
    body.end('<a>ok</a>');
    (await read)();
    expect(Buffer.concat(chunks).toString()).toBe('<a>ok</a>');
    const long = new PassThrough();
    const refused = readHeldBody(long, { heldFor: 'acl', maxBytes: 10, tooLarge }, () => undefined);
    long.end('<a>too long</a>');
    await expect(refused).rejects.toMatchObject({ code: 'MaxMessageLengthExceeded' });
    const stalled = new PassThrough();
    const timedOut = readHeldBody(stalled, { heldFor: 'acl', maxBytes: 10, tooLarge, deadlineMs: 50 }, () => undefined);
    stalled.write('<a>');
    await expect(timedOut).rejects.toMatchObject({ code: 'RequestTimeout' });
  });

  it("holds answers built from a body (a DeleteResult echoes every key) against the key's share until they are sent", async () => {
    const release = holdAnswerBytes('quiet-reader', MAX_HELD_BODY_BYTES_PER_KEY);
    const refused = park(1, DELETE_REQUEST_SHAPE, () => 'quiet-reader', DELETE_OPENING);
    expect(await refused.outcomes[0]).toMatch(/^SlowDown: This key is sending too many/);
    release();
    release(); // once only
    const read = park(1, DELETE_REQUEST_SHAPE, () => 'quiet-reader', DELETE_OPENING);
    read.streams[0]!.end(DELETE_CLOSING);
    expect(await read.outcomes[0]).toBe('read');
  });

  it('keeps a body held after it is read, for what is made of it (a DeleteObjects during its deletes), until released', async () => {
    const fit = Math.floor(MAX_HELD_BODY_BYTES_PER_KEY / DELETE_OPENING.length);
    const reads = Array.from({ length: fit }, () => new PassThrough());
    const results = reads.map((stream) => readXmlBody(stream, DELETE_REQUEST_SHAPE, { heldFor: 'deleting', keepHeld: true }));
    for (const stream of reads) stream.end(Buffer.concat([DELETE_OPENING, DELETE_CLOSING]));
    const read = await Promise.all(results);
    // Read, not yet released: the key's share is still taken.
    const refused = park(1, DELETE_REQUEST_SHAPE, () => 'deleting', DELETE_OPENING);
    expect(await refused.outcomes[0]).toMatch(/^SlowDown: This key is sending too many/);
    for (const { release } of read) release();
    const next = park(1, DELETE_REQUEST_SHAPE, () => 'deleting', DELETE_OPENING);
    next.streams[0]!.end(DELETE_CLOSING);
    expect(await next.outcomes[0]).toBe('read');
  });

  it('refuses DeleteObjects keys longer than any object key (each would be echoed in the answer)', () => {
    const entries = (key: string) => ({ rootFields: {}, entries: [{ Key: key }] });
    expect(deleteRequest(entries('k'.repeat(1024))).entries[0]!.key).toHaveLength(1024);
    expect(() => deleteRequest(entries('k'.repeat(1025)))).toThrow(expect.objectContaining({ code: 'KeyTooLongError' }));
    expect(() => deleteRequest(entries('é'.repeat(513)))).toThrow(expect.objectContaining({ code: 'KeyTooLongError' }));
  });
});
