/**
 * V8 heap tuning for a process that streams request and response bodies through it.
 *
 * Every socket read is a fresh 64 KiB off-heap buffer, so a gateway carrying 300 MB/s allocates
 * ~300 MB/s of "external" memory that dies young. V8 counts external memory allocated since the
 * last full GC against the old generation's allocation limit, and young buffers are only freed
 * in batches of ~32 MB (a scavenge triggered by external memory pressure). After a full GC, V8
 * sets the next limit at the old generation's size times a growing factor (only 1.3 under the
 * image's 128 MB --max-old-space-size), or at least a minimum step of ~8 MB: ~10 MB of headroom
 * here, less than one such batch. So it ran a full mark-compact every ~50 ms while streaming, and
 * half of the gateway's CPU per GiB carried went to GC (docs/benchmarks.md). A factor of 3
 * (32 MB of headroom) still left ~20 full GCs per GiB.
 *
 * A growing factor of 4 gives ~45 MB of headroom: full GCs during large transfers drop to about
 * one per GiB (test/integration/memory.test.ts counts them). The flag replaces V8's other factors
 * too (its memory-reducing and near-the-cap modes); what still bounds the heap is the cap itself
 * and V8's rule that a new limit lies at most halfway between the current size and the cap.
 * V8 reads the flag whenever it recomputes the limit, so setting it at start works.
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

const FLAG = '--heap-growing-percent';

/**
 * Applies the tuning unless the operator passed the flag to node themselves (`node
 * --heap-growing-percent=N dist/cli/main.js serve`; Node refuses it in NODE_OPTIONS).
 */
export function tuneHeapForStreaming(execArgv: readonly string[] = process.execArgv, setFlags: (flags: string) => void = v8.setFlagsFromString): boolean {
  const setByOperator = execArgv.some((arg) => arg.replaceAll('_', '-').startsWith(FLAG));
  if (setByOperator) return false;
  setFlags(`${FLAG}=${HEAP_GROWING_PERCENT}`);
  return true;
}
