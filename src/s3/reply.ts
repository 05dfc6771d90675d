/**
 * What handling an S3 request produces: the answer the HTTP layer writes (src/http/s3.ts). S3
 * modules never write to the connection themselves.
 */
import type { Readable } from 'node:stream';

export type Reply =
  /**
   * A document the gateway wrote (its Content-Length is known). `release`, when set, is called once
   * the response is done (sent, or its connection gone): the document's bytes were held against its
   * sender's share until then (src/s3/held-bodies.ts).
   */
  | { kind: 'xml'; status: number; xml: string; headers?: Record<string, string>; release?: () => void }
  /** Headers only (e.g. 204, a redirect). */
  | { kind: 'empty'; status: number; headers: Record<string, string> }
  /** An upstream answer, streamed through. */
  | { kind: 'stream'; status: number; headers: Record<string, string | string[]>; body: Readable };

export function xmlReply(status: number, xml: string, headers?: Record<string, string>): Reply {
  return { kind: 'xml', status, xml, headers };
}
