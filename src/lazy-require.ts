/**
 * CommonJS packages loaded on first use instead of at start. The XML body parser (sax), the POST
 * form reader (busboy) and the upstream-XML reader (fast-xml-parser) serve a few operations, never
 * a plain GET or HEAD; loaded at start they held ~6 MB of resident memory in every process (sax
 * alone ~4 MB: Node's ESM loader scans a CommonJS file's source for its exports, and V8 keeps the
 * optimized scanner). require() is synchronous, so their callers stay synchronous too.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A getter that loads `id` with require() on its first call and returns the same module after. */
export function lazyRequire<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
