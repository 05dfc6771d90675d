/**
 * V8 heap tuning for a process that streams request and response bodies through it.
 *
 * Every socket read is a fresh 64 KiB off-heap buffer, so a gateway carrying 300 MB/s allocates
 * ~300 MB/s of "external" memory that dies young. V8 counts external memory allocated since the
 * last full GC against the old generation's allocation limit, and young buffers are only freed
 * in batches of ~32 MB (a scavenge triggered by external memory pressure). With a capped heap
 * (the image's --max-old-space-size), V8 grows the old generation's limit to only ~1.3x the live
 * heap (~10 MB of headroom here): less than one such batch, so it ran a full mark-compact every
 * ~50 ms while streaming, and half of the gateway's CPU per GiB carried went to GC
 * (docs/benchmarks.md). A factor of 3 (32 MB of headroom) still left ~20 full GCs per GiB.
 *
 * A growing factor of 4 gives ~45 MB of headroom (V8 also caps the limit halfway to the heap cap):
 * full GCs during large transfers drop to about one per GiB, and the heap cap still bounds memory
 * (test/integration/memory.test.ts counts both). The flag is read whenever V8 recomputes the
 * limit, so setting it at start works.
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

const FLAG = '--heap-growing-percent';

/**
 * Applies the tuning unless the operator passed the flag to node themselves (`node
 * --heap-growing-percent=N dist/cli/main.js serve`; Node refuses it in NODE_OPTIONS).
 */
export function tuneHeapForStreaming(execArgv: readonly string[] = process.execArgv): boolean {
  const setByOperator = execArgv.some((arg) => arg.replaceAll('_', '-').startsWith(FLAG));
  if (setByOperator) return false;
  v8.setFlagsFromString(`${FLAG}=${HEAP_GROWING_PERCENT}`);
  return true;
}
